package classify

import "testing"

// domainDotCases are windows spelledEmail matches (domainDot must say
// true) and prose it does not (where domainDot saves the expression).
var domainDotCases = []struct {
	w    string
	want bool
}{
	{"jane dot doe at bank dot de", true},
	{"jane(at)bank(dot)de", true},
	{"jane [at] bank [.] com", true},
	{"jane @ bank . de", true},
	{"jane at bank.de", true},
	{"JANE AT BANK DOT DE", true},
	{"jane at bank punkt de", true},
	{"jane at bank pun\u212at de", true}, // KELVIN SIGN folds to k
	{"jane at bank.\u017fe", true},       // LONG S folds to s
	{"Look at the figures. Then compare them at the end of the quarter.", false},
	{"Meet me at noon, at the usual place", false},
}

func TestDomainDot(t *testing.T) {
	for _, c := range domainDotCases {
		if got := domainDot(c.w); got != c.want {
			t.Errorf("domainDot(%q) = %v, want %v", c.w, got, c.want)
		}
		if spelledEmail.MatchString(c.w) && !domainDot(c.w) {
			t.Errorf("spelledEmail matches %q but domainDot says no", c.w)
		}
	}
}

// domainDot must hold wherever spelledEmail matches: it only ever skips
// windows the expression would have searched in vain.
func FuzzDomainDot(f *testing.F) {
	for _, c := range domainDotCases {
		f.Add(c.w)
	}
	f.Fuzz(func(t *testing.T, w string) {
		if spelledEmail.MatchString(w) && !domainDot(w) {
			t.Fatalf("spelledEmail matches %q but domainDot says no", w)
		}
	})
}
