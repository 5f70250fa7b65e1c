package demogen

import (
	"encoding/base64"
	"slices"
)

// The rows of the four CDC tables, field for field as the source databases
// have them (and in that order: the JSON converter writes columns in table
// order). They are both the generator's model of the tables and the row
// images it publishes, so a before image is always the row as last
// published.

// Account is a row of streaming.public.accounts.
type Account struct {
	AccountID      int64  `json:"account_id"`
	Email          string `json:"email"`
	Country        string `json:"country"`
	CreatedAt      string `json:"created_at"`
	Status         string `json:"status"`
	LifetimeMonths int    `json:"lifetime_months"`
}

// Profile is a row of streaming.public.profiles.
type Profile struct {
	ProfileID     string  `json:"profile_id"`
	AccountID     int64   `json:"account_id"`
	Name          string  `json:"name"`
	Kids          bool    `json:"kids"`
	Language      *string `json:"language"`
	MaturityLevel int     `json:"maturity_level"`
	IsPrimary     bool    `json:"is_primary"`
	CreatedAt     string  `json:"created_at"`
}

// Device is a row of streaming.public.devices.
type Device struct {
	DeviceID     string  `json:"device_id"`
	ProfileID    *string `json:"profile_id"`
	Platform     string  `json:"platform"`
	Model        *string `json:"model"`
	AppVersion   string  `json:"app_version"`
	DRMLevel     int     `json:"drm_level"`
	FirstSeen    string  `json:"first_seen"`
	SessionCount int     `json:"session_count"`
}

// Subscription is a row of billing.public.subscriptions as the JSON
// converter writes it with schemas: price is a Connect Decimal (base64 of
// the unscaled big-endian two's-complement value, scale 2), the times are
// MicroTimestamps (microseconds since the epoch).
type Subscription struct {
	SubscriptionID int64   `json:"subscription_id"`
	AccountID      int64   `json:"account_id"`
	Plan           string  `json:"plan"`
	Price          string  `json:"price"`
	Currency       string  `json:"currency"`
	StartedAt      int64   `json:"started_at"`
	RenewsAt       *int64  `json:"renews_at"`
	Trial          bool    `json:"trial"`
	PaymentMethod  *string `json:"payment_method"`
}

// decimalBase64 encodes cents as a Connect Decimal of scale 2: the unscaled
// value in big-endian two's complement, in as few bytes as keep the sign.
func decimalBase64(cents int64) string {
	n := 1
	for v := cents; v > 127 || v < -128; v >>= 8 {
		n++
	}
	b := make([]byte, n)
	for i, v := n-1, cents; i >= 0; i, v = i-1, v>>8 {
		b[i] = byte(v)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// table is an ordered set of rows with a key index. Rows keep insertion
// order except that a removal moves the last row into the gap, so picking
// a row by position is deterministic for a given history.
type table[T any] struct {
	NextID int64 `json:"next_id"`
	Rows   []T   `json:"rows"`

	key   func(T) string
	index map[string]int
}

func newTable[T any](firstID int64, key func(T) string) *table[T] {
	return &table[T]{NextID: firstID, key: key, index: map[string]int{}}
}

// reindex rebuilds the index after the rows were loaded.
func (t *table[T]) reindex(key func(T) string) {
	t.key = key
	t.index = make(map[string]int, len(t.Rows))
	for i, r := range t.Rows {
		t.index[key(r)] = i
	}
}

func (t *table[T]) len() int { return len(t.Rows) }

func (t *table[T]) add(r T) {
	t.index[t.key(r)] = len(t.Rows)
	t.Rows = append(t.Rows, r)
}

func (t *table[T]) get(k string) (T, bool) {
	i, ok := t.index[k]
	if !ok {
		var zero T
		return zero, false
	}
	return t.Rows[i], true
}

func (t *table[T]) set(r T) { t.Rows[t.index[t.key(r)]] = r }

func (t *table[T]) remove(k string) {
	i, ok := t.index[k]
	if !ok {
		return
	}
	last := len(t.Rows) - 1
	if i != last {
		t.Rows[i] = t.Rows[last]
		t.index[t.key(t.Rows[i])] = i
	}
	t.Rows = slices.Delete(t.Rows, last, last+1)
	delete(t.index, k)
}

// takeID returns the next id of the table's sequence.
func (t *table[T]) takeID() int64 {
	id := t.NextID
	t.NextID++
	return id
}
