package api

import (
	"net/http"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// purgeRequest is the body of POST /v1/admin/purge.
type purgeRequest struct {
	Node string `json:"node"`
}

type purgeResponse struct {
	Node     nodeKeyJSON `json:"node"`
	PurgedAt time.Time   `json:"purged_at"`
	// ImpressionsRemoved is how many of the node's frequency-cap
	// impressions went (-1: removed, not counted); absent when counts are
	// off.
	ImpressionsRemoved *int `json:"impressions_removed,omitempty"`
}

// purgePos is the position of a purge: the greatest, so that the purge
// covers everything of its microsecond.
var purgePos = func() graph.Pos {
	var p graph.Pos
	for i := range p {
		p[i] = 0xff
	}
	return p
}()

// postPurge removes a node and every edge at it for good (graph.OpPurgeNode
// at the server's clock), and its frequency-cap impressions when counts are
// on: the answer to a privacy request. What the sources write later, with
// a later event time, is new data and is kept. A failure after the graph
// purge is answered as an error; the purge is idempotent, so the client
// retries the whole call.
func (s *server) postPurge(w http.ResponseWriter, r *http.Request) {
	if s.purger == nil {
		s.writeProblem(w, r, apiErr(kindNotImplemented, "", "this process does not write to the graph store; send the purge to a process that does"))
		return
	}
	if err := checkJSONBody(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if err := checkNoQuery(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	var body purgeRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), &body); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	k, err := s.parseNodeRef(body.Node, "node")
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	at := s.now().UTC().Truncate(time.Microsecond)
	// A purge walks the node's edges: it gets the longest budget a caller
	// may ask for. Cut short, it has removed part of them; a retry finishes.
	r, cancel := withBudget(r, s.cfg.MaxTimeBudget)
	defer cancel()
	if err := s.purger.Apply(r.Context(), []graph.Mutation{{Op: graph.OpPurgeNode, Node: k, EventTime: at, Pos: purgePos}}); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	resp := purgeResponse{Node: nodeKeyJSON{Type: k.Type, ID: k.ID}, PurgedAt: at}
	if s.cpurger != nil {
		n, err := s.cpurger.PurgeUser(r.Context(), k, at)
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		resp.ImpressionsRemoved = &n
	}
	s.log.Info("node purged", "node", k.String(), "purged_at", at, "request_id", requestIDFrom(r.Context()))
	s.writeJSON(w, resp)
}
