package demogen

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
)

// Request logs, as the services write them (field names and time formats
// of verticals/streaming/samples/requests.*.jsonl).

type loginLog struct {
	RequestID string  `json:"request_id"`
	Ts        string  `json:"ts"`
	Event     string  `json:"event"`
	AccountID int64   `json:"account_id"`
	DeviceID  string  `json:"device_id"`
	AdUserID  *string `json:"ad_user_id,omitempty"`
	Outcome   string  `json:"outcome,omitempty"`
	IPCountry string  `json:"ip_country,omitempty"`
	LatencyMs int     `json:"latency_ms,omitempty"`
}

type titleView struct {
	RequestID string  `json:"request_id"`
	Ts        string  `json:"ts"`
	AccountID int64   `json:"account_id"`
	ProfileID string  `json:"profile_id"`
	DeviceID  string  `json:"device_id"`
	TitleID   string  `json:"title_id"`
	Page      string  `json:"page"`
	Row       *string `json:"row"`
	Position  *int    `json:"position"`
}

type playbackLog struct {
	RequestID string `json:"request_id"`
	TsMs      int64  `json:"ts_ms"`
	Event     string `json:"event"`
	ProfileID string `json:"profile_id"`
	DeviceID  string `json:"device_id"`
	TitleID   string `json:"title_id"`
	ResumeS   *int   `json:"resume_s,omitempty"`
	Quality   string `json:"quality,omitempty"`
	PositionS *int   `json:"position_s,omitempty"`
}

type adUser struct {
	ID       string `json:"id"`
	Segment  string `json:"segment"`
	Country  string `json:"country"`
	AgeBand  string `json:"age_band"`
	OptedOut bool   `json:"opted_out"`
}

type adImpression struct {
	RequestID  string  `json:"request_id"`
	Ts         string  `json:"ts"`
	User       adUser  `json:"user"`
	CampaignID string  `json:"campaign_id"`
	CreativeID string  `json:"creative_id"`
	Placement  string  `json:"placement"`
	CostMicros int64   `json:"cost_micros"`
	Viewable   bool    `json:"viewable"`
	DwellS     float64 `json:"dwell_s"`
}

// rfc3339Milli is the request logs' time format.
func rfc3339Milli(us int64) string { return usTime(us).Format("2006-01-02T15:04:05.000Z07:00") }

// requestID is unique across runs: it carries the run tag.
func (g *Generator) requestID(kind string) string {
	g.seq++
	return fmt.Sprintf("req-%s-%s-%d", kind, g.runTag, g.seq)
}

// accountUser is the ad server's user id of an account's household: the
// id a successful login ties to the account (identifies edges).
func accountUser(accountID int64) string { return "u-" + strconv.FormatInt(accountID+8000, 10) }

// A built request: its topic, the value to encode and its event time.
type request struct {
	topic string
	value any
	at    int64
}

func (r request) record() record {
	kind := kindRequest
	if r.topic == TopicAds {
		kind = kindImpression
	}
	return record{topic: r.topic, value: mustJSON(r.value), at: usTime(r.at), kind: kind}
}

// The request steps fall back to a CDC insert while the tables they draw
// from are empty, so every step yields a record.

func (g *Generator) loginStep() []record {
	if r, ok := g.login(); ok {
		return []record{r.record()}
	}
	return g.insertDevice(g.liveEvent("c"))
}

func (g *Generator) titlePageStep() []record {
	if r, ok := g.titlePage(); ok {
		return []record{r.record()}
	}
	return g.insertProfile(g.liveEvent("c"))
}

func (g *Generator) playbackStep() []record {
	if r, ok := g.playback(); ok {
		return []record{r.record()}
	}
	return g.insertProfile(g.liveEvent("c"))
}

func (g *Generator) adStep() []record { return []record{g.impression().record()} }

// viewer picks who is watching: a device with its profile and account.
func (g *Generator) viewer() (acct Account, prof Profile, dev Device, ok bool) {
	if g.st.Devices.len() == 0 || g.st.Profiles.len() == 0 || g.st.Accounts.len() == 0 {
		return acct, prof, dev, false
	}
	for range 3 {
		dev = pick(g, g.st.Devices.Rows)
		if dev.ProfileID == nil {
			continue
		}
		if prof, ok = g.st.Profiles.get(*dev.ProfileID); ok {
			if acct, ok = g.st.Accounts.get(strconv.FormatInt(prof.AccountID, 10)); ok {
				return acct, prof, dev, true
			}
		}
	}
	// A device shared across profiles, or one whose profile is gone.
	prof = pick(g, g.st.Profiles.Rows)
	acct, ok = g.st.Accounts.get(strconv.FormatInt(prof.AccountID, 10))
	return acct, prof, dev, ok
}

func (g *Generator) login() (request, bool) {
	acct, _, dev, ok := g.viewer()
	if !ok {
		return request{}, false
	}
	at := g.tick()
	v := loginLog{RequestID: g.requestID("login"), Ts: rfc3339Milli(at), Event: "login", AccountID: acct.AccountID, DeviceID: dev.DeviceID}
	if g.rng.IntN(10) == 0 {
		v.Event = "logout" // not a graph change: the mapping ignores it
		return request{topic: TopicLogin, value: v, at: at}, true
	}
	v.Outcome = pick(g, loginOutcomes)
	if v.Outcome == "success" {
		v.AdUserID = ptr(accountUser(acct.AccountID))
	}
	v.IPCountry = acct.Country
	if g.rng.IntN(10) == 0 {
		v.IPCountry = pick(g, countries) // travelling
	}
	v.LatencyMs = 40 + g.rng.IntN(300)
	return request{topic: TopicLogin, value: v, at: at}, true
}

// titleID picks a title: a popular one of the catalogue mostly, now and
// then one the catalogue does not have (the join misses, on_miss: pass).
func (g *Generator) titleID() string {
	if g.rng.IntN(33) == 0 {
		return fmt.Sprintf("t-9%03d", g.rng.IntN(1000))
	}
	return titleKey(g.skewed(g.st.Titles))
}

func (g *Generator) titlePage() (request, bool) {
	acct, prof, dev, ok := g.viewer()
	if !ok {
		return request{}, false
	}
	at := g.tick()
	v := titleView{RequestID: g.requestID("view"), Ts: rfc3339Milli(at), AccountID: acct.AccountID,
		ProfileID: prof.ProfileID, DeviceID: dev.DeviceID, TitleID: g.titleID(), Page: pick(g, pages)}
	if v.Page != "trailer" {
		v.Row = ptr(pick(g, homeRows))
		v.Position = ptr(1 + g.rng.IntN(20))
	}
	return request{topic: TopicTitlePage, value: v, at: at}, true
}

func (g *Generator) playback() (request, bool) {
	_, prof, dev, ok := g.viewer()
	if !ok {
		return request{}, false
	}
	at := g.tick()
	v := playbackLog{RequestID: g.requestID("play"), TsMs: at / 1000, Event: "playback_start",
		ProfileID: prof.ProfileID, DeviceID: dev.DeviceID, TitleID: g.titleID()}
	if g.rng.IntN(5) < 2 {
		// Heartbeats are not graph changes: the mapping ignores them.
		v.Event, v.PositionS = "heartbeat", ptr(60*(1+g.rng.IntN(90)))
	} else {
		v.ResumeS, v.Quality = ptr(0), pick(g, qualities)
		if g.rng.IntN(3) == 0 {
			v.ResumeS = ptr(g.rng.IntN(3600))
		}
	}
	return request{topic: TopicPlayback, value: v, at: at}, true
}

// impression is always possible: with no accounts yet the user is an
// anonymous one.
func (g *Generator) impression() request {
	var user adUser
	if g.st.Accounts.len() > 0 && (g.cfg.AnonymousUsers == 0 || g.rng.IntN(4) != 0) {
		a := g.st.Accounts.Rows[g.skewed(g.st.Accounts.len())]
		user = g.userTraits(accountUser(a.AccountID), a.Country)
	} else {
		user = g.userTraits(fmt.Sprintf("u-a%d", g.skewed(max(1, g.cfg.AnonymousUsers))), "")
	}
	c := g.campaign(g.rng.IntN(len(g.st.CampaignRevs)))
	// Creatives are served by weight; the last one takes the rounding.
	cr := c.creativeIDs[len(c.creativeIDs)-1]
	u := g.rng.Float64()
	for _, id := range c.creativeIDs {
		if u -= c.doc.Creatives[id].Weight; u < 0 {
			cr = id
			break
		}
	}
	at := g.tick()
	creative := c.doc.Creatives[cr]
	v := adImpression{RequestID: g.requestID("ad"), Ts: rfc3339Milli(at), User: user, CampaignID: c.doc.CampaignID,
		CreativeID: cr, Placement: pick(g, placements),
		CostMicros: int64(math.Round(c.doc.BidCPM * 1000 * (0.8 + 0.4*g.rng.Float64()))),
		Viewable:   g.rng.IntN(5) != 0}
	if creative.DurationS > 0 {
		v.DwellS = math.Round(float64(creative.DurationS)*g.rng.Float64()*10) / 10
	} else {
		v.DwellS = math.Round((0.2+5*g.rng.Float64())*10) / 10
	}
	return request{topic: TopicAds, value: v, at: at}
}

// userTraits are a user's stable attributes: a function of the seed and
// the id, so every impression of a user describes it alike.
func (g *Generator) userTraits(id, country string) adUser {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", g.st.Seed, id)
	x := h.Sum64()
	if country == "" {
		country = countries[x%uint64(len(countries))]
	}
	x /= uint64(len(countries))
	u := adUser{ID: id, Country: country, Segment: segments[x%uint64(len(segments))]}
	x /= uint64(len(segments))
	u.AgeBand = ageBands[x%uint64(len(ageBands))]
	x /= uint64(len(ageBands))
	u.OptedOut = x%30 == 0
	return u
}
