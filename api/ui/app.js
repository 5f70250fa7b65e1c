// rtgraph explorer: talks to the /v1 API of the origin that served it.
// No third-party code; the API key lives in memory (and in sessionStorage
// only when asked).
"use strict";

(function () {
  const SINCE = "1970-01-01T00:00:00Z";
  const KEY_STORE = "rtgraph.apiKey";
  const state = {
    schema: null,
    last: null, // {path, params: [[k, v]], python}
    root: null, // {type, id}
    degrees: new Map(), // "type\u0000id\u0000edge\u0000dir" -> count
  };

  const $ = (sel) => document.querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }

  // --- API key ---------------------------------------------------------

  let apiKey = "";
  try {
    apiKey = sessionStorage.getItem(KEY_STORE) || "";
  } catch (_) {
    apiKey = "";
  }
  $("#api-key").value = apiKey;
  $("#api-key-remember").checked = apiKey !== "";

  function rememberKey() {
    try {
      if ($("#api-key-remember").checked && apiKey) sessionStorage.setItem(KEY_STORE, apiKey);
      else sessionStorage.removeItem(KEY_STORE);
    } catch (_) {
      /* storage unavailable: memory only */
    }
  }
  $("#api-key").addEventListener("change", () => {
    apiKey = $("#api-key").value.trim();
    rememberKey();
    loadSchema();
  });
  $("#api-key-remember").addEventListener("change", rememberKey);

  // --- requests --------------------------------------------------------

  function seg(s) {
    return encodeURIComponent(s);
  }

  function queryString(params) {
    const q = new URLSearchParams();
    for (const [k, v] of params) q.append(k, v);
    const s = q.toString();
    return s ? "?" + s : "";
  }

  class Problem extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || "HTTP " + status);
      this.status = status;
      this.body = body || {};
    }
  }

  // api GETs path with params; record (with python, the client call that
  // does the same) makes it the "last request" the copy buttons use.
  async function api(path, params, python, record) {
    const url = path + queryString(params || []);
    if (record !== false) {
      state.last = { path, params: params || [], python };
      $("#last-request").textContent = "GET " + url;
      $("#copy-curl").disabled = false;
      $("#copy-python").disabled = false;
    }
    const headers = { Accept: "application/json, application/problem+json" };
    if (apiKey) headers.Authorization = "Bearer " + apiKey;
    let resp;
    try {
      resp = await fetch(url, { headers, credentials: "omit", cache: "no-store" });
    } catch (err) {
      throw new Problem(0, { title: "Network error", detail: String(err) });
    }
    const text = await resp.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = { title: "Unreadable answer", detail: text.slice(0, 500) };
    }
    if (!resp.ok) throw new Problem(resp.status, body);
    return body;
  }

  function showError(err) {
    const b = err instanceof Problem ? err.body : { title: "Error", detail: String(err) };
    $("#error-status").textContent = err instanceof Problem && err.status ? String(err.status) : "";
    $("#error-title").textContent = b.title || "";
    $("#error-detail").textContent = b.detail || "";
    $("#error-field").textContent = b.field || "";
    $("#error-type").textContent = b.type || "";
    $("#error").hidden = false;
  }

  function clearError() {
    $("#error").hidden = true;
  }

  function problemBox(err) {
    const b = err instanceof Problem ? err.body : { title: "Error", detail: String(err) };
    const box = el("div", { class: "problem-inline" });
    box.append(el("strong", { class: "problem-title", text: (err.status ? err.status + " " : "") + (b.title || "Error") }));
    if (b.detail) box.append(el("div", { class: "problem-detail", text: b.detail }));
    if (b.field) box.append(el("div", { class: "problem-field", text: "field: " + b.field }));
    return box;
  }

  // --- schema ----------------------------------------------------------

  function edgeOptions(nodeType) {
    const opts = [];
    if (!state.schema) return opts;
    for (const et of state.schema.edge_types) {
      if (et.from.includes(nodeType)) opts.push({ edgeType: et.name, direction: "out" });
      if (et.to.includes(nodeType) && et.reverse) opts.push({ edgeType: et.name, direction: "in" });
    }
    return opts;
  }

  async function loadSchema() {
    $("#schema-status").textContent = "loading schema…";
    try {
      const s = await api("/v1/schema", [], "c.schema()", false);
      state.schema = s;
      const sel = $("#node-type");
      const prev = sel.value;
      sel.replaceChildren(...s.node_types.map((t) => el("option", { value: t.name, text: t.name })));
      if (prev && s.node_types.some((t) => t.name === prev)) sel.value = prev;
      $("#schema-status").textContent = s.node_types.length + " node types, " + s.edge_types.length + " edge types; watermark " + freshness(s.watermark);
      clearError();
    } catch (err) {
      $("#schema-status").textContent = "schema unavailable";
      showError(err);
    }
  }

  // --- formatting ------------------------------------------------------

  function age(ms) {
    if (ms < 0) return "in the future by " + age(-ms).replace(/ old$/, "");
    const s = Math.floor(ms / 1000);
    if (s < 120) return s + "s old";
    if (s < 7200) return Math.floor(s / 60) + "m old";
    if (s < 172800) return Math.floor(s / 3600) + "h old";
    return Math.floor(s / 86400) + "d old";
  }

  function freshness(w) {
    if (!w || !w.known || !w.event_time) return "unknown";
    const t = Date.parse(w.event_time);
    return w.event_time + " (" + age(Date.now() - t) + ")";
  }

  function fmtValue(v) {
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  function propsSummary(props) {
    const ks = Object.keys(props || {});
    if (ks.length === 0) return "";
    return ks.map((k) => k + "=" + fmtValue(props[k])).join(", ");
  }

  function degreeKey(type, id, edgeType, dir) {
    return [type, id, edgeType, dir].join("\u0000");
  }

  // --- find a node -----------------------------------------------------

  async function findNode(type, id) {
    clearError();
    const base = "/v1/nodes/" + seg(type) + "/" + seg(id);
    let nodeResp;
    try {
      nodeResp = await api(base, [], "c.node(" + py(type) + ", " + py(id) + ")");
    } catch (err) {
      $("#node").hidden = true;
      $("#tree").replaceChildren();
      $("#expand").disabled = true;
      state.root = null;
      showError(err);
      return;
    }
    const n = nodeResp.node;
    state.root = { type: n.type, id: n.id };
    $("#node").hidden = false;
    $("#node-title").textContent = n.type + ":" + n.id;
    $("#node-event-time").textContent = n.event_time;
    $("#node-watermark").textContent = freshness(nodeResp.watermark);
    const tbody = $("#node-props tbody");
    tbody.replaceChildren(
      ...Object.keys(n.props || {})
        .sort()
        .map((k) => el("tr", { "data-prop": k }, el("td", { text: k }), el("td", { text: fmtValue(n.props[k]) })))
    );
    if (tbody.children.length === 0) tbody.append(el("tr", {}, el("td", { colSpan: 2, class: "muted", text: "no properties" })));

    const dbody = $("#degrees tbody");
    dbody.replaceChildren();
    try {
      const d = await api(base + "/degree", [["since", SINCE]], "c.degree(" + py(type) + ", " + py(id) + ', since="' + SINCE + '")');
      for (const g of d.degrees) {
        state.degrees.set(degreeKey(n.type, n.id, g.edge_type, g.direction), g.count);
        dbody.append(
          el("tr", { "data-edge-type": g.edge_type, "data-direction": g.direction },
            el("td", { text: g.edge_type }), el("td", { text: g.direction }), el("td", { class: "count", text: String(g.count) }))
        );
      }
      if (d.degrees.length === 0) dbody.append(el("tr", {}, el("td", { colSpan: 3, class: "muted", text: "no edge types" })));
    } catch (err) {
      dbody.append(el("tr", {}, el("td", { colSpan: 3 }, problemBox(err))));
    }

    // The tree starts at this node; the expand form grows it.
    const tree = $("#tree");
    tree.replaceChildren(nodeItem(n.type, n.id, "", true));
    fillRootExpand(n.type);
  }

  function fillRootExpand(type) {
    const opts = edgeOptions(type);
    const etSel = $("#expand-edge-type");
    const names = [...new Set(opts.map((o) => o.edgeType))];
    etSel.replaceChildren(...names.map((nm) => el("option", { value: nm, text: nm })));
    const fillDir = () => {
      const dirs = opts.filter((o) => o.edgeType === etSel.value).map((o) => o.direction);
      $("#expand-direction").replaceChildren(...dirs.map((d) => el("option", { value: d, text: d })));
    };
    etSel.onchange = fillDir;
    fillDir();
    $("#expand").disabled = names.length === 0;
  }

  // --- the neighbour tree ----------------------------------------------

  // nodeItem is one node of the tree; root items are expanded with the
  // form above, the others with their own controls.
  function nodeItem(type, id, edgeInfo, isRoot, prefer) {
    const li = el("li", { class: "tree-node", "data-type": type, "data-id": id });
    const line = el("div", { class: "node-line" }, el("span", { class: "node-label", text: type + ":" + id }));
    li.append(line);
    if (!isRoot) {
      const opts = edgeOptions(type);
      if (opts.length > 0) {
        const sel = el("select", { class: "hop-edge", title: "edge type (direction)" },
          ...opts.map((o) => el("option", { value: o.edgeType + " " + o.direction, text: o.edgeType + " (" + o.direction + ")" })));
        // Default to the edge type and direction this node was reached by.
        if (prefer && opts.some((o) => o.edgeType + " " + o.direction === prefer)) sel.value = prefer;
        const lim = el("input", { class: "hop-limit", type: "number", min: 1, value: "25", title: "limit" });
        const btn = el("button", { class: "hop-expand", type: "button", text: "expand" });
        btn.addEventListener("click", () => {
          const [edgeType, dir] = sel.value.split(" ");
          expand(li, type, id, edgeType, dir, lim.value);
        });
        line.append(el("span", { class: "hop-controls" }, sel, " limit ", lim, " ", btn));
      }
    }
    if (edgeInfo) li.append(el("div", { class: "edge-info muted", text: edgeInfo }));
    return li;
  }

  // expand reads one page of a node's edges into a group under li; the
  // group keeps its cursor for "load more".
  async function expand(li, type, id, edgeType, dir, limitStr) {
    clearError();
    const limit = parseInt(limitStr, 10) > 0 ? String(parseInt(limitStr, 10)) : "25";
    const key = edgeType + " " + dir;
    let group = [...li.children].find((c) => c.classList && c.classList.contains("expansion") && c.dataset.key === key);
    if (group) group.remove();
    group = el("div", { class: "expansion", "data-key": key, "data-edge-type": edgeType, "data-direction": dir });
    group.append(el("div", { class: "expansion-head", text: edgeType + " (" + dir + ")" }));
    const list = el("ul", { class: "tree children" });
    const status = el("p", { class: "page-status" });
    group.append(list, status);
    li.append(group);
    await loadPage(group, list, status, type, id, edgeType, dir, limit, null);
  }

  async function loadPage(group, list, status, type, id, edgeType, dir, limit, cursor) {
    const path = "/v1/nodes/" + seg(type) + "/" + seg(id) + "/edges";
    const params = [["edge_type", edgeType], ["direction", dir], ["limit", limit], ["order", "key"], ["since", SINCE]];
    if (cursor) params.push(["cursor", cursor]);
    const pyCall = "c.edges_page(" + py(type) + ", " + py(id) + ", " + py(edgeType) + ", direction=" + py(dir) +
      ", limit=" + limit + ', order="key", since="' + SINCE + '"' + (cursor ? ", cursor=" + py(cursor) : "") + ")";
    let page;
    try {
      page = await api(path, params, pyCall);
    } catch (err) {
      status.replaceChildren(problemBox(err));
      showError(err);
      return;
    }
    for (const e of page.edges) {
      const nb = dir === "out" ? e.to : e.from;
      const info = "edge event_time " + e.event_time + (propsSummary(e.props) ? "; " + propsSummary(e.props) : "");
      list.append(nodeItem(nb.type, nb.id, info, false, edgeType + " " + dir));
    }
    const shown = list.children.length;
    status.replaceChildren();
    if (page.has_more) {
      let total = state.degrees.get(degreeKey(type, id, edgeType, dir));
      if (total === undefined) {
        // Count them (not a "last request": the edges are).
        try {
          const d = await api("/v1/nodes/" + seg(type) + "/" + seg(id) + "/degree",
            [["edge_type", edgeType], ["direction", dir], ["since", SINCE]], "", false);
          const g = d.degrees.find((x) => x.edge_type === edgeType && x.direction === dir);
          if (g) {
            total = g.count;
            state.degrees.set(degreeKey(type, id, edgeType, dir), total);
          }
        } catch (_) {
          total = undefined;
        }
      }
      const text = total !== undefined
        ? "showing " + shown + " of " + total + " (truncated)"
        : "showing " + shown + " (truncated; more exist, total unknown)";
      status.append(el("span", { class: "truncated", text }));
      const more = el("button", { class: "load-more", type: "button", text: "load more" });
      more.addEventListener("click", () => {
        more.disabled = true;
        loadPage(group, list, status, type, id, edgeType, dir, limit, page.next_cursor);
      });
      status.append(" ", more);
    } else {
      status.append(el("span", { class: "complete", text: shown === 0 ? "no neighbours" : "showing all " + shown }));
    }
  }

  // --- counts ----------------------------------------------------------

  function splitRef(ref) {
    const i = ref.indexOf(":");
    if (i <= 0 || i === ref.length - 1) return null;
    return [ref.slice(0, i), ref.slice(i + 1)];
  }

  async function counts() {
    clearError();
    const out = $("#counts-result");
    out.replaceChildren();
    const user = $("#counts-user").value.trim();
    const u = splitRef(user);
    if (!u) {
      out.append(problemBox(new Problem(0, { title: "Invalid user", detail: "user must be type:id", field: "user" })));
      return;
    }
    const edgeType = $("#counts-edge-type").value.trim();
    const targets = $("#counts-targets").value.split(",").map((s) => s.trim()).filter((s) => s);
    const windows = $("#counts-windows").value.split(",").map((s) => s.trim()).filter((s) => s).join(",");
    const params = [["edge_type", edgeType]];
    for (const t of targets) params.push(["target", t]);
    if (windows) params.push(["windows", windows]);
    const pyCall = "c.counts(" + py(user) + ", [" + targets.map(py).join(", ") + "], edge_type=" + py(edgeType) +
      (windows ? ", windows=" + py(windows) : "") + ")";
    let r;
    try {
      r = await api("/v1/counts/" + seg(u[0]) + "/" + seg(u[1]), params, pyCall);
    } catch (err) {
      out.append(problemBox(err));
      showError(err);
      return;
    }
    const table = el("table", { id: "counts-table" });
    table.append(el("thead", {}, el("tr", {}, el("th", { text: "target" }), ...r.windows.map((w) => el("th", { text: w })))));
    const tb = el("tbody");
    for (const t of r.targets) {
      tb.append(el("tr", { "data-target": t.target }, el("td", { text: t.target }),
        ...r.windows.map((w) => el("td", { class: "count", text: String(t.counts[w] ?? "") }))));
    }
    table.append(tb);
    out.append(el("p", { class: "muted", text: "as of " + r.as_of + "; allowed " + r.allowed + "; watermark " + freshness(r.watermark) }), table);
  }

  // --- copy as curl / Python --------------------------------------------

  function py(s) {
    return JSON.stringify(String(s));
  }

  function shq(s) {
    return "'" + String(s).replace(/'/g, "'\\''") + "'";
  }

  function curlText(last) {
    const url = location.origin + last.path + queryString(last.params);
    let s = "curl -sS " + shq(url);
    if (apiKey) s += ' \\\n  -H "Authorization: Bearer $RTGRAPH_API_KEY"';
    return s;
  }

  function pythonText(last) {
    const lines = ["from rtgraph import Client", ""];
    if (apiKey) lines.push("# the API key is read from the RTGRAPH_API_KEY environment variable");
    lines.push("c = Client(" + py(location.origin) + ")");
    lines.push("print(" + last.python + ")");
    return lines.join("\n");
  }

  async function copy(text) {
    $("#snippet").textContent = text;
    let msg = "shown below";
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        msg = "copied to the clipboard";
      } catch (_) {
        msg = "shown below (clipboard refused)";
      }
    }
    $("#copy-status").textContent = msg;
  }

  $("#copy-curl").addEventListener("click", () => state.last && copy(curlText(state.last)));
  $("#copy-python").addEventListener("click", () => state.last && copy(pythonText(state.last)));

  // --- wiring ----------------------------------------------------------

  $("#find-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("#node-id").value.trim();
    if (id) findNode($("#node-type").value, id);
  });
  $("#expand-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const root = $("#tree > li");
    if (!root || !state.root) return;
    expand(root, state.root.type, state.root.id, $("#expand-edge-type").value, $("#expand-direction").value, $("#expand-limit").value);
  });
  $("#counts-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    counts();
  });

  loadSchema();
})();
