package demogen

import (
	"fmt"
	"time"
)

// The share of each kind of step once the snapshot is out, in percent of
// the well-formed records (malformed ones are drawn first, at
// Config.MalformedShare).
var stepWeights = []struct {
	weight int
	step   func(g *Generator) []record
}{
	{3, (*Generator).accountStep},
	{5, (*Generator).profileStep},
	{8, (*Generator).deviceStep},
	{3, (*Generator).subscriptionStep},
	{10, (*Generator).loginStep},
	{20, (*Generator).titlePageStep},
	{20, (*Generator).playbackStep},
	{30, (*Generator).adStep},
	{1, (*Generator).metadataStep},
}

var stepTotal = func() int {
	n := 0
	for _, w := range stepWeights {
		n += w.weight
	}
	return n
}()

// Sizes the tables hover around, per account.
const (
	profilesPerAccount      = 2.0
	devicesPerAccount       = 3.0
	subscriptionsPerAccount = 0.7
	maxProfilesPerAccount   = 5
)

// step generates the records of one change or request: usually one record,
// more for a delete (its tombstone) or a cascade.
func (g *Generator) step() []record {
	if recs, ok := g.snapshotStep(); ok {
		return recs
	}
	if g.cfg.MalformedShare > 0 && g.rng.Float64() < g.cfg.MalformedShare {
		return []record{g.malformed()}
	}
	r := g.rng.IntN(stepTotal)
	for _, w := range stepWeights {
		if r < w.weight {
			return w.step(g)
		}
		r -= w.weight
	}
	panic("demogen: step weights do not add up") // r < stepTotal by construction
}

// snapshotStep publishes the initial rows of a fresh generator as
// Debezium's initial snapshot does: op r, table after table (parents
// first), source.snapshot "true" and "last" on the very last row.
func (g *Generator) snapshotStep() ([]record, bool) {
	left := &g.st.SnapshotLeft
	for i := range left {
		if left[i] == 0 {
			continue
		}
		left[i]--
		snap := "true"
		if *left == [4]int{} {
			snap = "last"
		}
		e := cdcEvent{op: "r", snapshot: snap, at: g.tick(), txID: g.nextTx()}
		var recs []record
		switch i {
		case 0:
			recs = g.insertAccount(e)
		case 1:
			recs = g.insertProfile(e)
		case 2:
			recs = g.insertDevice(e)
		case 3:
			recs = g.insertSubscription(e)
		}
		return recs, true
	}
	return nil, false
}

func (g *Generator) nextTx() int64 {
	g.st.TxID++
	return g.st.TxID
}

func (g *Generator) liveEvent(op string) cdcEvent {
	return cdcEvent{op: op, snapshot: "false", at: g.tick(), txID: g.nextTx()}
}

// cdcOp chooses insert, update or delete for a table of n rows that should
// hover around target: inserts dominate while it is small, then inserts
// and deletes balance.
func (g *Generator) cdcOp(n int, target float64) string {
	ins := 0.1 + 0.8*max(0, 1-float64(n)/target)
	r := g.rng.Float64()
	switch {
	case n == 0 || r < ins:
		return "c"
	case r < ins+0.1:
		return "d"
	}
	return "u"
}

func pick[T any](g *Generator, xs []T) T { return xs[g.rng.IntN(len(xs))] }

// skewed picks an index below n, the lower ones more often (the square of a
// uniform variable): old accounts and popular titles get most traffic.
func (g *Generator) skewed(n int) int {
	u := g.rng.Float64()
	return min(n-1, int(u*u*float64(n)))
}

func ptr[T any](v T) *T { return &v }

// --- accounts ---

func (g *Generator) accountStep() []record {
	switch g.cdcOp(g.st.Accounts.len(), float64(g.cfg.Accounts)) {
	case "c":
		return g.insertAccount(g.liveEvent("c"))
	case "d":
		return g.deleteAccount()
	}
	a := pick(g, g.st.Accounts.Rows)
	before := a
	switch r := g.rng.IntN(10); {
	case r < 5:
		a.LifetimeMonths++
	case r < 9:
		a.Status = pick(g, accountStatuses)
	default:
		a.Email = emailOf(pick(g, firstNames), pick(g, lastNames), a.AccountID, pick(g, emailDomains[a.Country]))
	}
	g.st.Accounts.set(a)
	return plainEvent(TopicAccounts, "accounts", accountRecordKey(a.AccountID), g.liveEvent("u"), &before, &a)
}

func (g *Generator) insertAccount(e cdcEvent) []record {
	id := g.st.Accounts.takeID()
	country := pick(g, countries)
	created := usTime(e.at)
	if e.op == "r" {
		// Snapshot rows were created over the last three years.
		created = created.Add(-time.Duration(g.rng.Int64N(3*365*24)) * time.Hour)
	}
	a := Account{
		AccountID:      id,
		Email:          emailOf(pick(g, firstNames), pick(g, lastNames), id, pick(g, emailDomains[country])),
		Country:        country,
		CreatedAt:      rfc3339Micro(created.Add(time.Duration(g.rng.IntN(1e6)) * time.Microsecond)),
		Status:         "active",
		LifetimeMonths: int(usTime(e.at).Sub(created).Hours() / (24 * 30)),
	}
	g.st.Accounts.add(a)
	return plainEvent(TopicAccounts, "accounts", accountRecordKey(id), e, nil, &a)
}

// deleteAccount deletes an account and, as ON DELETE CASCADE does, its
// profiles (with their devices) and its subscription, children first, all
// in one transaction.
func (g *Generator) deleteAccount() []record {
	a := pick(g, g.st.Accounts.Rows)
	tx := g.nextTx()
	var recs []record
	for _, p := range g.profilesOf(a.AccountID) {
		recs = append(recs, g.deleteProfileTx(p, tx)...)
	}
	for _, s := range g.st.Subscriptions.Rows {
		if s.AccountID == a.AccountID {
			recs = append(recs, g.deleteSubscriptionTx(s, tx)...)
			break
		}
	}
	g.st.Accounts.remove(accountKey(a))
	e := cdcEvent{op: "d", snapshot: "false", at: g.tick(), txID: tx}
	return append(recs, plainEvent[Account](TopicAccounts, "accounts", accountRecordKey(a.AccountID), e, &a, nil)...)
}

func (g *Generator) profilesOf(accountID int64) []Profile {
	var out []Profile
	for _, p := range g.st.Profiles.Rows {
		if p.AccountID == accountID {
			out = append(out, p)
		}
	}
	return out
}

// --- profiles ---

func (g *Generator) profileStep() []record {
	switch g.cdcOp(g.st.Profiles.len(), profilesPerAccount*float64(g.cfg.Accounts)) {
	case "c":
		return g.insertProfile(g.liveEvent("c"))
	case "d":
		p := pick(g, g.st.Profiles.Rows)
		return g.deleteProfileTx(p, g.nextTx())
	}
	p := pick(g, g.st.Profiles.Rows)
	before := p
	switch r := g.rng.IntN(20); {
	case r < 10:
		p.MaturityLevel = min(18, p.MaturityLevel+1)
	case r < 19:
		if p.Language == nil {
			p.Language = ptr("en")
		} else {
			p.Language = nil
		}
	default:
		// Moved to another account (a household split): the mapping deletes
		// the edge from the old account.
		other := pick(g, g.st.Accounts.Rows)
		if other.AccountID != p.AccountID && len(g.profilesOf(other.AccountID)) < maxProfilesPerAccount {
			p.AccountID = other.AccountID
			p.IsPrimary = false
		} else {
			p.MaturityLevel = max(7, p.MaturityLevel-1)
		}
	}
	g.st.Profiles.set(p)
	return plainEvent(TopicProfiles, "profiles", profileRecordKey(p.ProfileID), g.liveEvent("u"), &before, &p)
}

func (g *Generator) insertProfile(e cdcEvent) []record {
	if g.st.Accounts.len() == 0 {
		return g.insertAccount(e)
	}
	var (
		acct     Account
		siblings []Profile
		found    bool
	)
	for range 4 {
		acct = pick(g, g.st.Accounts.Rows)
		if siblings = g.profilesOf(acct.AccountID); len(siblings) < maxProfilesPerAccount {
			found = true
			break
		}
	}
	if !found {
		return g.insertAccount(e)
	}
	kids := g.rng.IntN(5) == 0
	p := Profile{
		ProfileID:     fmt.Sprintf("p-%d", g.st.Profiles.takeID()),
		AccountID:     acct.AccountID,
		Name:          pick(g, firstNames),
		Kids:          kids,
		MaturityLevel: 18,
		IsPrimary:     len(siblings) == 0,
		CreatedAt:     rfc3339Micro(usTime(e.at)),
	}
	if kids {
		p.Name, p.MaturityLevel = "Kids", 7+g.rng.IntN(4)
	} else if g.rng.IntN(4) == 0 {
		p.MaturityLevel = 16
	}
	if g.rng.IntN(10) != 0 {
		p.Language = ptr(languages[acct.Country])
	}
	g.st.Profiles.add(p)
	return plainEvent(TopicProfiles, "profiles", profileRecordKey(p.ProfileID), e, nil, &p)
}

// deleteProfileTx deletes a profile and its devices in transaction tx.
func (g *Generator) deleteProfileTx(p Profile, tx int64) []record {
	var recs []record
	for _, d := range g.devicesOf(p.ProfileID) {
		g.st.Devices.remove(d.DeviceID)
		recs = append(recs, deviceEvent(cdcEvent{op: "d", snapshot: "false", at: g.tick(), txID: tx}, d))
	}
	g.st.Profiles.remove(p.ProfileID)
	e := cdcEvent{op: "d", snapshot: "false", at: g.tick(), txID: tx}
	return append(recs, plainEvent[Profile](TopicProfiles, "profiles", profileRecordKey(p.ProfileID), e, &p, nil)...)
}

func (g *Generator) devicesOf(profileID string) []Device {
	var out []Device
	for _, d := range g.st.Devices.Rows {
		if d.ProfileID != nil && *d.ProfileID == profileID {
			out = append(out, d)
		}
	}
	return out
}

// --- devices ---

func (g *Generator) deviceStep() []record {
	switch g.cdcOp(g.st.Devices.len(), devicesPerAccount*float64(g.cfg.Accounts)) {
	case "c":
		return g.insertDevice(g.liveEvent("c"))
	case "d":
		d := pick(g, g.st.Devices.Rows)
		g.st.Devices.remove(d.DeviceID)
		return []record{deviceEvent(g.liveEvent("d"), d)}
	}
	d := pick(g, g.st.Devices.Rows)
	d.SessionCount += 1 + g.rng.IntN(5)
	if g.rng.IntN(5) == 0 {
		d.AppVersion = bumpVersion(d.AppVersion)
	}
	g.st.Devices.set(d)
	return []record{deviceEvent(g.liveEvent("u"), d)}
}

func (g *Generator) insertDevice(e cdcEvent) []record {
	if g.st.Profiles.len() == 0 {
		return g.insertProfile(e)
	}
	platform := pick(g, platforms)
	d := Device{
		DeviceID:     fmt.Sprintf("d-%d", g.st.Devices.takeID()),
		Platform:     platform,
		AppVersion:   fmt.Sprintf("%d.%d.%d", 8+g.rng.IntN(9), g.rng.IntN(130), g.rng.IntN(4)),
		DRMLevel:     drmLevels[platform],
		FirstSeen:    rfc3339Micro(usTime(e.at).Truncate(time.Second)),
		SessionCount: 1,
	}
	if ms, ok := models[platform]; ok {
		d.Model = ptr(pick(g, ms))
	}
	if platform == "web" {
		d.AppVersion = fmt.Sprintf("web-2026.%d", 1+g.rng.IntN(52))
	}
	if e.op == "r" {
		d.SessionCount = 1 + g.rng.IntN(500)
	}
	// A device seen before its first login has no profile yet.
	if g.rng.IntN(20) != 0 {
		d.ProfileID = ptr(pick(g, g.st.Profiles.Rows).ProfileID)
	}
	g.st.Devices.add(d)
	return []record{deviceEvent(e, d)}
}

func bumpVersion(v string) string {
	var a, b, c int
	if n, _ := fmt.Sscanf(v, "%d.%d.%d", &a, &b, &c); n == 3 {
		return fmt.Sprintf("%d.%d.%d", a, b+1, 0)
	}
	return v // web builds keep their version
}

// --- subscriptions ---

func (g *Generator) subscriptionStep() []record {
	switch g.cdcOp(g.st.Subscriptions.len(), subscriptionsPerAccount*float64(g.cfg.Accounts)) {
	case "c":
		return g.insertSubscription(g.liveEvent("c"))
	case "d":
		s := pick(g, g.st.Subscriptions.Rows)
		return g.deleteSubscriptionTx(s, g.nextTx())
	}
	s := pick(g, g.st.Subscriptions.Rows)
	before := s
	switch {
	case s.Trial:
		s.Trial = false
		s.PaymentMethod = ptr(pick(g, paymentMethods))
		s.RenewsAt = ptr(g.tickPeek() + 30*24*3600*1e6)
	case g.rng.IntN(2) == 0:
		s.Plan = pick(g, plans)
		s.Price = decimalBase64(priceCents(s.Plan, s.Currency))
	default:
		s.RenewsAt = ptr(max(deref(s.RenewsAt), s.StartedAt) + 30*24*3600*1e6)
	}
	g.st.Subscriptions.set(s)
	return g.subscriptionRecords(g.liveEvent("u"), s.SubscriptionID, &before, &s)
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// tickPeek is the current event clock without advancing it.
func (g *Generator) tickPeek() int64 { return max(g.cfg.Clock().UnixMicro(), g.st.LastEventUS) }

func priceCents(plan, currency string) int64 {
	c := planCents[plan]
	if f, ok := currencyFactor[currency]; ok {
		c *= f
	}
	return c
}

func (g *Generator) insertSubscription(e cdcEvent) []record {
	if g.st.Accounts.len() == 0 {
		return g.insertAccount(e)
	}
	var acct Account
	found := false
	for range 5 {
		acct = pick(g, g.st.Accounts.Rows)
		if !g.hasSubscription(acct.AccountID) {
			found = true
			break
		}
	}
	if !found {
		// Every account tried already pays: a device shows up instead, so
		// the step still yields a change.
		return g.insertDevice(e)
	}
	started := e.at
	if e.op == "r" {
		started -= g.rng.Int64N(365*24*3600) * 1e6
	}
	currency := currencies[acct.Country]
	plan := pick(g, plans)
	s := Subscription{
		SubscriptionID: g.st.Subscriptions.takeID(),
		AccountID:      acct.AccountID,
		Plan:           plan,
		Price:          decimalBase64(priceCents(plan, currency)),
		Currency:       currency,
		StartedAt:      started,
		Trial:          e.op == "c" && g.rng.IntN(4) == 0,
	}
	if !s.Trial {
		s.RenewsAt = ptr(started + 30*24*3600*1e6)
		s.PaymentMethod = ptr(pick(g, paymentMethods))
	}
	g.st.Subscriptions.add(s)
	return g.subscriptionRecords(e, s.SubscriptionID, nil, &s)
}

func (g *Generator) hasSubscription(accountID int64) bool {
	for _, s := range g.st.Subscriptions.Rows {
		if s.AccountID == accountID {
			return true
		}
	}
	return false
}

func (g *Generator) deleteSubscriptionTx(s Subscription, tx int64) []record {
	g.st.Subscriptions.remove(subscriptionKey(s))
	return g.subscriptionRecords(cdcEvent{op: "d", snapshot: "false", at: g.tick(), txID: tx}, s.SubscriptionID, &s, nil)
}

func (g *Generator) subscriptionRecords(e cdcEvent, id int64, before, after *Subscription) []record {
	recs, err := subscriptionEvent(e, id, before, after)
	if err != nil {
		// New checked that the schemas load; they are embedded, so this
		// cannot change while running.
		panic(err)
	}
	return recs
}
