package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

type users map[string]catalog.User

func (u users) User(_ context.Context, name string) (catalog.User, bool, error) {
	usr, ok := u[name]
	return usr, ok, nil
}

func verifier(t *testing.T, pw string) string {
	t.Helper()
	v, err := pgwire.NewSCRAMVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func authServer(t *testing.T, hba string) *httptest.Server {
	t.Helper()
	rules, err := pgwire.ParseHBA([]byte(hba))
	if err != nil {
		t.Fatal(err)
	}
	u := users{
		"postgres": {Name: "postgres", Superuser: true, Verifier: verifier(t, "su-pw")},
		"watcher":  {Name: "watcher", Privs: []string{"monitor"}, Verifier: verifier(t, "w-pw")},
		"adder":    {Name: "adder", Privs: []string{"add", "list"}, Verifier: verifier(t, "a-pw")},
		"nopw":     {Name: "nopw", Superuser: true},
	}
	s := New(&fake{st: demo()}, Options{CacheFor: time.Hour, ProbeTimeout: time.Second, Auth: &Auth{HBA: rules, Users: u}})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func getAs(t *testing.T, url, user, pw string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestAuthBasic(t *testing.T) {
	srv := authServer(t, "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n")
	for _, tc := range []struct {
		path, user, pw string
		code           int
	}{
		{"/metrics", "", "", 401},
		{"/cluster", "postgres", "wrong", 401},
		{"/cluster", "nobody", "su-pw", 401},
		{"/cluster", "nopw", "", 401},
		{"/cluster", "adder", "a-pw", 403},
		{"/cluster", "postgres", "su-pw", 200},
		{"/metrics", "watcher", "w-pw", 200},
		{"/", "watcher", "w-pw", 200},
		{"/cluster", "watcher", "w-pw", 200}, // again: from the cache
		{"/cluster", "watcher", "bad", 401},  // the cache is keyed by the password
		{"/healthz", "", "", 200},
	} {
		res := getAs(t, srv.URL+tc.path, tc.user, tc.pw)
		if res.StatusCode != tc.code {
			t.Errorf("GET %s as %q/%q: %d, want %d", tc.path, tc.user, tc.pw, res.StatusCode, tc.code)
		}
		if tc.code == 401 && res.Header.Get("WWW-Authenticate") != `Basic realm="adbmgr"` {
			t.Errorf("GET %s as %q: WWW-Authenticate %q", tc.path, tc.user, res.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestAuthHBA(t *testing.T) {
	srv := authServer(t, "host all all 127.0.0.1/32 trust\n")
	if res := getAs(t, srv.URL+"/cluster", "", ""); res.StatusCode != 200 {
		t.Errorf("trust: GET /cluster without credentials: %d", res.StatusCode)
	}
	srv = authServer(t, "host all all 127.0.0.1/32 reject\n")
	if res := getAs(t, srv.URL+"/cluster", "postgres", "su-pw"); res.StatusCode != 403 {
		t.Errorf("reject: GET /cluster: %d", res.StatusCode)
	}
	if res := getAs(t, srv.URL+"/healthz", "", ""); res.StatusCode != 200 {
		t.Errorf("reject: GET /healthz: %d", res.StatusCode)
	}
	srv = authServer(t, "host all all 10.0.0.0/8 trust\n")
	if res := getAs(t, srv.URL+"/cluster", "postgres", "su-pw"); res.StatusCode != 403 {
		t.Errorf("no rule: GET /cluster: %d", res.StatusCode)
	}
}

func TestVerifyPassword(t *testing.T) {
	v := verifier(t, "pw")
	if !pgwire.VerifyPassword("u", v, "pw") || pgwire.VerifyPassword("u", v, "px") || pgwire.VerifyPassword("u", "", "") {
		t.Error("VerifyPassword")
	}
}
