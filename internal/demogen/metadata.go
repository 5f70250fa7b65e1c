package demogen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Metadata documents (verticals/streaming/samples/meta.*.jsonl): a title of the
// catalogue and an ad campaign with its creatives. Each document is a
// function of the seed, its index and (campaigns) its revision, so a
// republished revision is the same document.

type titleDoc struct {
	TitleID        string   `json:"title_id"`
	Name           string   `json:"name"`
	Kind           string   `json:"kind"`
	Genres         []string `json:"genres"`
	MaturityRating string   `json:"maturity_rating"`
	ReleaseYear    int      `json:"release_year"`
}

type creativeDoc struct {
	Format    string  `json:"format"`
	DurationS int     `json:"duration_s"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Weight    float64 `json:"weight"`
	StartedAt string  `json:"started_at"`
}

type campaignDoc struct {
	CampaignID  string                 `json:"campaign_id"`
	Advertiser  string                 `json:"advertiser"`
	Name        string                 `json:"name"`
	BudgetCents int64                  `json:"budget_cents"`
	DailyCap    int                    `json:"daily_cap"`
	BidCPM      float64                `json:"bid_cpm"`
	Active      bool                   `json:"active"`
	Creatives   map[string]creativeDoc `json:"creatives"`
}

// cachedCampaign is a campaign document at one revision, with its creative
// ids in a fixed order for weighted picking.
type cachedCampaign struct {
	rev         int
	doc         campaignDoc
	creativeIDs []string
}

func titleKey(i int) string    { return fmt.Sprintf("t-%d", 100+i) }
func campaignKey(i int) string { return fmt.Sprintf("c-%d", 500+i) }

// docRand is the random source of one document: independent of the
// generator's sequence, so documents do not depend on when they are built.
func docRand(seed uint64, domain string, i int) *rand.Rand {
	var d uint64
	for _, c := range domain {
		d = d*131 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed^d, uint64(i)))
}

func titleDocument(seed uint64, i int) titleDoc {
	r := docRand(seed, "title", i)
	t := titleDoc{
		TitleID:        titleKey(i),
		Name:           "The " + adjectives[r.IntN(len(adjectives))] + " " + nouns[r.IntN(len(nouns))],
		Kind:           []string{"movie", "series", "series"}[r.IntN(3)],
		MaturityRating: ratings[r.IntN(len(ratings))],
		ReleaseYear:    1990 + r.IntN(37),
		Genres:         []string{},
	}
	for n := r.IntN(4); len(t.Genres) < n; {
		if g := genres[r.IntN(len(genres))]; !contains(t.Genres, g) {
			t.Genres = append(t.Genres, g)
		}
	}
	return t
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func campaignDocument(seed uint64, i, rev int) cachedCampaign {
	r := docRand(seed, "campaign", i)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%60)
	c := campaignDoc{
		CampaignID: campaignKey(i),
		Advertiser: advertisers[r.IntN(len(advertisers))],
		Name:       campaignWords[r.IntN(len(campaignWords))],
		DailyCap:   2 + r.IntN(7),
		Active:     true,
		Creatives:  map[string]creativeDoc{},
	}
	baseBudget := int64(500000 + r.IntN(50)*100000)
	baseBid := 1 + float64(r.IntN(400))/100
	// A revision is a budget top-up and a bid change.
	c.BudgetCents = baseBudget + int64(rev)*250000
	c.BidCPM = math.Round((baseBid+0.25*float64(rev%5))*100) / 100
	n := 2 + r.IntN(3)
	weights := make([]float64, n)
	total := 0.0
	for j := range weights {
		weights[j] = 1 + float64(r.IntN(9))
		total += weights[j]
	}
	out := cachedCampaign{rev: rev}
	for j := range n {
		id := fmt.Sprintf("cr-%d", 1000+i*10+j)
		cr := creativeDoc{Format: creativeFormats[r.IntN(len(creativeFormats))],
			Weight: math.Round(weights[j]/total*100) / 100, StartedAt: start.Format(time.RFC3339)}
		switch cr.Format {
		case "video":
			cr.DurationS, cr.Width, cr.Height = []int{6, 15, 30}[r.IntN(3)], 1920, 1080
		case "banner":
			cr.Width, cr.Height = 728, 90
		default:
			cr.Width, cr.Height = 600, 400
		}
		c.Creatives[id] = cr
		out.creativeIDs = append(out.creativeIDs, id)
	}
	out.doc = c
	return out
}

// campaign returns campaign i at its current revision.
func (g *Generator) campaign(i int) *cachedCampaign {
	if g.campaigns == nil {
		g.campaigns = make(map[int]*cachedCampaign)
	}
	rev := g.st.CampaignRevs[i]
	if c, ok := g.campaigns[i]; ok && c.rev == rev {
		return c
	}
	c := campaignDocument(g.st.Seed, i, rev)
	g.campaigns[i] = &c
	return &c
}

func (g *Generator) titleRecord(i int) record {
	return record{topic: TopicTitles, key: []byte(titleKey(i)), value: mustJSON(titleDocument(g.st.Seed, i)),
		at: usTime(g.tick()), kind: kindMetadata}
}

func (g *Generator) campaignRecord(i int) record {
	return record{topic: TopicCampaigns, key: []byte(campaignKey(i)), value: mustJSON(g.campaign(i).doc),
		at: usTime(g.tick()), kind: kindMetadata}
}

// metadataStep revises a campaign, or releases a new title while the
// catalogue is under twice its initial size.
func (g *Generator) metadataStep() []record {
	if g.rng.IntN(5) < 2 && g.st.Titles < 2*g.cfg.Titles {
		g.st.Titles++
		return []record{g.titleRecord(g.st.Titles - 1)}
	}
	i := g.rng.IntN(len(g.st.CampaignRevs))
	g.st.CampaignRevs[i]++
	return []record{g.campaignRecord(i)}
}
