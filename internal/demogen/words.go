package demogen

// Vocabulary of the generated rows and documents. Changing a list changes
// every sequence generated from a seed, so they are append-only in spirit.

var (
	countries = []string{"NL", "US", "KR", "DE", "FR", "BR", "IN", "GB", "ES", "JP"}
	languages = map[string]string{"NL": "nl", "US": "en", "KR": "ko", "DE": "de", "FR": "fr",
		"BR": "pt", "IN": "hi", "GB": "en", "ES": "es", "JP": "ja"}
	currencies = map[string]string{"NL": "EUR", "US": "USD", "KR": "KRW", "DE": "EUR", "FR": "EUR",
		"BR": "BRL", "IN": "INR", "GB": "GBP", "ES": "EUR", "JP": "JPY"}
	emailDomains = map[string][]string{
		"NL": {"example.nl", "mail.example.nl"}, "US": {"example.com", "mail.example.com"},
		"KR": {"example.kr"}, "DE": {"example.de"}, "FR": {"example.fr"}, "BR": {"example.com.br"},
		"IN": {"example.in"}, "GB": {"example.co.uk"}, "ES": {"example.es"}, "JP": {"example.jp"},
	}
	firstNames = []string{"Maria", "Sam", "Kim", "Noah", "Emma", "Liam", "Yuki", "Aarav", "Lucas", "Sofia",
		"Mila", "Daan", "Jin", "Chloe", "Mateo", "Anya", "Omar", "Ines", "Felix", "Hana"}
	lastNames = []string{"Jansen", "Smith", "Park", "Muller", "Martin", "Silva", "Sharma", "Brown",
		"Garcia", "Sato", "de Vries", "Lee", "Dubois", "Santos", "Kumar"}
	accountStatuses = []string{"active", "active", "active", "on_hold"}
	plans           = []string{"basic", "standard", "premium"}
	// planCents is the monthly price of each plan in the smallest unit of
	// EUR/USD-like currencies; others scale by currencyFactor.
	planCents      = map[string]int64{"basic": 799, "standard": 1349, "premium": 1999}
	currencyFactor = map[string]int64{"KRW": 1300, "JPY": 150, "INR": 80, "BRL": 5}
	paymentMethods = []string{"card", "card", "paypal", "gift", "partner"}
	platforms      = []string{"tv", "tv", "web", "ios", "android", "console"}
	models         = map[string][]string{
		"tv":      {"Bravia XR-55", "OLED65C3", "QN90C", "Hisense U8"},
		"ios":     {"iPhone 15", "iPad Air", "iPhone 13 mini"},
		"android": {"Pixel 8", "Galaxy S23", "Fire HD 10"},
		"console": {"PlayStation 5", "Xbox Series X"},
	}
	drmLevels     = map[string]int{"tv": 1, "web": 3, "ios": 2, "android": 2, "console": 1}
	loginOutcomes = []string{"success", "success", "success", "success", "success", "success",
		"success", "success", "wrong_password", "locked"}
	pages       = []string{"title_page", "title_page", "episode_list", "trailer"}
	homeRows    = []string{"trending_now", "continue_watching", "kids_favourites", "new_releases", "because_you_watched"}
	qualities   = []string{"sd", "hd", "hd", "uhd"}
	placements  = []string{"pre_roll", "mid_roll", "home_banner", "pause_screen"}
	segments    = []string{"drama_fans", "sports", "kids_family", "documentary", "comedy", "action"}
	ageBands    = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
	advertisers = []string{"Northwind Outdoor", "Contoso Sports", "Fabrikam Motors", "Tailspin Travel",
		"Wide World Importers", "Adventure Works", "Litware Foods", "Proseware Games"}
	adjectives = []string{"Long", "Silent", "Paper", "Golden", "Last", "Hidden", "Broken", "Northern",
		"Quiet", "Electric", "Lost", "Crimson", "Distant", "Wild", "Frozen", "Little"}
	nouns = []string{"Night", "Boats", "Harbour", "Summer", "Signal", "Garden", "River", "Kingdom",
		"Frontier", "Letters", "Machine", "Orchard", "Tide", "Circus", "Station", "Island"}
	genres          = []string{"drama", "thriller", "family", "comedy", "documentary", "action", "sci-fi", "romance", "crime", "animation"}
	ratings         = []string{"G", "PG", "PG-13", "TV-14", "TV-MA", "R"}
	creativeFormats = []string{"video", "banner", "native"}
	campaignWords   = []string{"Winter Boots", "Derby Day", "Road Trip", "City Break", "Game Night",
		"Fresh Start", "Summer Sale", "Launch Week", "Back to School", "Holiday Deals"}
)
