package catalog

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
)

// User is a manager user: who may connect to adbmgr and run which commands.
type User struct {
	Name string
	// Verifier is the SCRAM-SHA-256 verifier of the password ("" when the
	// user has none and can log in only where no password is asked for).
	Verifier  string
	Superuser bool
	// Privs are the AntDB privilege names GRANTed (add, alter, …), sorted.
	Privs []string
}

// UserTx changes the user table inside one transaction.
type UserTx interface {
	Users() ([]User, error)
	User(name string) (User, bool, error)
	// PutUser inserts or replaces u.
	PutUser(u User) error
	DeleteUser(name string) error
}

type userTx struct {
	ctx context.Context
	q   queryer
}

func scanUsers(rows *sql.Rows) ([]User, error) {
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var super int
		var privs string
		if err := rows.Scan(&u.Name, &u.Verifier, &super, &privs); err != nil {
			return nil, err
		}
		u.Superuser = super == 1
		if privs != "" {
			u.Privs = strings.Split(privs, ",")
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (t *userTx) Users() ([]User, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT name, verifier, superuser, privs FROM mgr_user ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return scanUsers(rows)
}

func (t *userTx) User(name string) (User, bool, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT name, verifier, superuser, privs FROM mgr_user WHERE name = ?`, name)
	if err != nil {
		return User{}, false, err
	}
	us, err := scanUsers(rows)
	if err != nil || len(us) == 0 {
		return User{}, false, err
	}
	return us[0], true, nil
}

func (t *userTx) PutUser(u User) error {
	if u.Name == "" {
		return errors.New("empty user name")
	}
	privs := slices.Clone(u.Privs)
	slices.Sort(privs)
	privs = slices.Compact(privs)
	super := 0
	if u.Superuser {
		super = 1
	}
	_, err := t.q.ExecContext(t.ctx, `INSERT INTO mgr_user (name, verifier, superuser, privs) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET verifier = excluded.verifier, superuser = excluded.superuser, privs = excluded.privs`,
		u.Name, u.Verifier, super, strings.Join(privs, ","))
	return err
}

func (t *userTx) DeleteUser(name string) error {
	_, err := t.q.ExecContext(t.ctx, `DELETE FROM mgr_user WHERE name = ?`, name)
	return err
}

// Users implements Catalog.
func (c *SQLite) Users(ctx context.Context) ([]User, error) {
	return (&userTx{ctx: ctx, q: c.rw}).Users()
}

// User implements Catalog. It reads through the writer's pool, which user
// SQL never uses, so a flood of slow SELECTs cannot keep anyone from
// logging in.
func (c *SQLite) User(ctx context.Context, name string) (User, bool, error) {
	return (&userTx{ctx: ctx, q: c.rw}).User(name)
}

// UpdateUsers implements Catalog.
func (c *SQLite) UpdateUsers(ctx context.Context, fn func(UserTx) error) error {
	return c.write(ctx, func(q queryer) error { return fn(&userTx{ctx: ctx, q: q}) })
}
