package mgr

import (
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// privSuperuser marks statements only a superuser may run.
const privSuperuser = "superuser"

// requiredPrivilege is the AntDB privilege (reference §3.12) a statement
// needs: "" for none (session statements, HELP, and commands a user runs on
// itself), privSuperuser for those AntDB reserves to superusers (SWITCHOVER,
// APPEND … FOR, APPEND ACTIVATE), for the host commands through which a
// user could run programs on the hosts (ADD/ALTER HOST, START AGENT,
// DEPLOY, FLUSH HOST), and for users, privileges and the doctor's switches.
func requiredPrivilege(st parser.Statement) string {
	switch st := st.(type) {
	case *parser.Help, *parser.SetVar, *parser.ResetVar, *parser.ShowVar, *parser.Transaction, *parser.WriteSQL,
		*parser.Other, *parser.ListACL, *parser.SetTransaction, *parser.Discard, *parser.Deallocate:
		return ""
	case *parser.UserStmt:
		// A user may change its own password (checked by alterUser).
		if !st.Create && st.Superuser == nil {
			return ""
		}
		return privSuperuser
	case *parser.AddHost, *parser.AlterHost, *parser.StartAgent, *parser.Deploy, *parser.Switchover,
		*parser.DropUser, *parser.Grant, *parser.Zone, *parser.Expand, *parser.RotateCertificates:
		return privSuperuser
	case *parser.Promote, *parser.ConfigSlave:
		// The manual failover steps change roles with none of FAILOVER's
		// checks (the DBA is the judge): for superusers.
		return privSuperuser
	case *parser.Append:
		if st.Activate || st.Source.Name != "" {
			return privSuperuser
		}
		return "append"
	case *parser.Doctor:
		if st.Action == "list" {
			return "list"
		}
		return privSuperuser
	case *parser.AddNode, *parser.AddHBA:
		return "add"
	case *parser.AlterNode:
		return "alter"
	case *parser.DropHost, *parser.DropNode, *parser.DropZone, *parser.DropHBA, *parser.Remove:
		return "drop"
	case *parser.Select:
		if readsNoTable(st.Text) {
			// SELECT 1, SELECT current_user, version(): what drivers,
			// pools and psql's \password ask of their own session, which
			// tells nothing about the cluster.
			return ""
		}
		return "list"
	case *parser.ListHost, *parser.ListNode, *parser.ListParam, *parser.ListHBA, *parser.ListNodeSize, *parser.ListJournal:
		return "list"
	case *parser.ShowParam, *parser.ShowHBA, *parser.ShowBoottime:
		return "show"
	case *parser.Monitor, *parser.MonitorHA, *parser.MonitorAgent, *parser.Checkout, *parser.Listen:
		return "monitor"
	case *parser.StartNodes:
		return "start"
	case *parser.StopNodes, *parser.StopAgent:
		return "stop"
	case *parser.InitAll, *parser.SetClusterInit:
		return "init"
	case *parser.Clean:
		return "clean"
	case *parser.SetParam:
		if _, ok := programParam(st); ok {
			return privSuperuser
		}
		if st.Reset {
			return "reset"
		}
		return "set"
	case *parser.Failover, *parser.Rewind:
		return "failover"
	case *parser.Flush:
		if st.What == "host" {
			// It stops and starts agents and restarts nodes, as START
			// AGENT does: for superusers.
			return privSuperuser
		}
		return "flush"
	}
	// A statement added later without a rule here is for superusers until
	// someone decides otherwise.
	return privSuperuser
}

// programParams are the server parameters that make a node run a program
// or load a library of the setter's choosing as the host's OS user: with
// them a user GRANTed only "set" would own every host's PostgreSQL account,
// so they are for superusers (PostgreSQL itself makes them superuser or
// postmaster settings for the same reason).
var programParams = map[string]bool{
	"archive_command": true, "archive_library": true, "restore_command": true,
	"archive_cleanup_command": true, "recovery_end_command": true,
	"ssl_passphrase_command": true, "shared_preload_libraries": true,
	"session_preload_libraries": true, "local_preload_libraries": true,
	"dynamic_library_path": true, "data_directory": true, "hba_file": true,
	"ident_file": true, "config_file": true, "external_pid_file": true,
	"log_directory": true, "unix_socket_directories": true, "unix_socket_group": true,
	"unix_socket_permissions": true, "ssl_cert_file": true, "ssl_key_file": true,
	"ssl_ca_file": true, "ssl_crl_file": true, "ssl_crl_dir": true,
	"jit_provider": true, "listen_addresses": true,
	// Where the server writes its log, with text clients choose.
	"log_filename": true, "logging_collector": true, "log_destination": true,
	"log_file_mode": true, "log_line_prefix": true, "syslog_ident": true, "event_source": true,
}

// programParam returns the first of st's parameters in programParams.
func programParam(st *parser.SetParam) (parser.Option, bool) {
	for _, o := range st.Params {
		if programParams[strings.ToLower(o.Name.Name)] {
			return o, true
		}
	}
	return parser.Option{}, false
}

// authorize refuses a statement the session's user may not run (42501),
// reading the user afresh so that REVOKE and DROP USER act at once.
func (m *Manager) authorize(e *req, st parser.Statement) error {
	priv := requiredPrivilege(st)
	if priv == "" {
		return nil
	}
	u, ok, err := m.cat.User(e.ctx, e.sess.User)
	if err != nil {
		return err
	}
	if !ok {
		return pgerror.New(pgerror.InvalidAuthorization, `role "%s" does not exist`, e.sess.User)
	}
	if u.Superuser || (priv != privSuperuser && slices.Contains(u.Privs, priv)) {
		return nil
	}
	if priv == privSuperuser {
		if sp, ok := st.(*parser.SetParam); ok {
			if o, ok := programParam(sp); ok {
				return e.at(pgerror.New(pgerror.InsufficientPrivilege, `permission denied: only superusers may set parameter "%s"`, o.Name.Name).
					WithDetail("It makes the nodes run a program, load a library or write a file of the setter's choosing as the host's OS user."), o.Name.Pos)
			}
		}
		return pgerror.New(pgerror.InsufficientPrivilege, "permission denied: %s is for superusers only", st.Command())
	}
	return pgerror.New(pgerror.InsufficientPrivilege, `permission denied: user "%s" lacks the %s privilege for %s`, u.Name, priv, st.Command()).
		WithHint("A superuser can GRANT %s TO %s.", priv, quoteIdent(u.Name))
}

func quoteIdent(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
	}
	return s
}

func (m *Manager) userStmt(e *req, st *parser.UserStmt) error {
	name := st.Name.Name
	if len(name) > 63 || strings.ContainsAny(name, ",\x00\n\r\t") {
		return e.at(pgerror.New(pgerror.InvalidParameterValue, "invalid user name %q: up to 63 bytes, no commas or control characters", name), st.Name.Pos)
	}
	verifier, err := passwordVerifier(st.Password)
	if err != nil {
		return err
	}
	err = m.cat.UpdateUsers(e.ctx, func(t catalog.UserTx) error {
		u, exists, err := t.User(name)
		if err != nil {
			return err
		}
		if st.Create {
			if exists {
				return e.at(pgerror.New(pgerror.DuplicateObject, `role "%s" already exists`, name), st.Name.Pos)
			}
			u = catalog.User{Name: name}
		} else {
			if !exists {
				return e.at(pgerror.New(pgerror.UndefinedObject, `role "%s" does not exist`, name), st.Name.Pos)
			}
			if st.Superuser == nil && name != e.sess.User {
				// Only the password is changed, and not the session's own.
				me, ok, err := t.User(e.sess.User)
				if err != nil {
					return err
				}
				if !ok || !me.Superuser {
					return pgerror.New(pgerror.InsufficientPrivilege, "permission denied: only a superuser may change another user's password")
				}
			}
		}
		if st.PasswordSet {
			u.Verifier = verifier
		}
		if st.Superuser != nil {
			if u.Superuser && !*st.Superuser {
				if err := keepOneSuperuser(t, name); err != nil {
					return err
				}
			}
			u.Superuser = *st.Superuser
		}
		return t.PutUser(u)
	})
	if err != nil {
		return err
	}
	return e.w.Complete(st.Command())
}

// passwordVerifier is what a user's PASSWORD '…' stores. As in
// PostgreSQL, a password given as a SCRAM-SHA-256 verifier (what psql's
// \password and drivers compute client-side, so that the password never
// crosses the wire) is stored as it is; any other text is the password,
// hashed here. An md5 hash is refused: the manager speaks only SCRAM, and
// storing it as a password would lock the user out.
func passwordVerifier(pw string) (string, error) {
	if pw == "" {
		return "", nil
	}
	if strings.HasPrefix(pw, "SCRAM-SHA-256$") {
		if !pgwire.VerifierValid(pw) {
			return "", pgerror.New(pgerror.InvalidParameterValue, "invalid password: it starts as a SCRAM-SHA-256 verifier but is not a valid one").
				WithHint("Give the password itself, or a verifier SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey as PostgreSQL's pg_authid keeps it.")
		}
		return pw, nil
	}
	if len(pw) == 35 && strings.HasPrefix(pw, "md5") && strings.Trim(pw[3:], "0123456789abcdef") == "" {
		return "", pgerror.New(pgerror.FeatureNotSupported, "md5 password hashes are not supported by adbmgr").
			WithHint("adbmgr authenticates with SCRAM-SHA-256 only: SET password_encryption = 'scram-sha-256' (its default) before \\password, or give the password itself.")
	}
	v, err := pgwire.NewSCRAMVerifier(pw)
	if err != nil {
		return "", pgerror.New(pgerror.InvalidParameterValue, "invalid password: %v", err)
	}
	return v, nil
}

// readsNoTable tells whether a SELECT reads no table once translated (a
// pg_catalog function such as pg_get_userbyid reads one then).
func readsNoTable(q string) bool {
	out, _, err := translateSQL(q, sqlEnv{settings: settings(nil)})
	if err != nil {
		return false
	}
	for _, t := range lexSQL(out) {
		if t.kind == tkIdent && (t.low == "from" || t.low == "with") {
			return false
		}
	}
	return true
}

// keepOneSuperuser refuses to take away the last superuser (name).
func keepOneSuperuser(t catalog.UserTx, name string) error {
	us, err := t.Users()
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Superuser && u.Name != name {
			return nil
		}
	}
	return pgerror.New(pgerror.ObjectInUse, `cannot remove the last superuser "%s"`, name).
		WithHint("Make another user a superuser first (ALTER USER … SUPERUSER).")
}

func (m *Manager) dropUser(e *req, st *parser.DropUser) error {
	err := m.cat.UpdateUsers(e.ctx, func(t catalog.UserTx) error {
		for _, id := range st.Names {
			u, ok, err := t.User(id.Name)
			if err != nil {
				return err
			}
			if !ok {
				if st.IfExists {
					e.w.Notice("NOTICE", `role "`+id.Name+`" does not exist, skipping`)
					continue
				}
				return e.at(pgerror.New(pgerror.UndefinedObject, `role "%s" does not exist`, id.Name), id.Pos)
			}
			if u.Name == e.sess.User {
				return e.at(pgerror.New(pgerror.ObjectInUse, "current user cannot be dropped"), id.Pos)
			}
			if u.Superuser {
				if err := keepOneSuperuser(t, u.Name); err != nil {
					return err
				}
			}
			if err := t.DeleteUser(u.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.w.Complete("DROP USER")
}

func (m *Manager) grant(e *req, st *parser.Grant) error {
	privs := st.Privs
	if st.AllPrivs {
		privs = parser.Privileges
	}
	err := m.cat.UpdateUsers(e.ctx, func(t catalog.UserTx) error {
		var targets []catalog.User
		if st.AllUsers {
			us, err := t.Users()
			if err != nil {
				return err
			}
			targets = us
		} else {
			for _, id := range st.Users {
				u, ok, err := t.User(id.Name)
				if err != nil {
					return err
				}
				if !ok {
					return e.at(pgerror.New(pgerror.UndefinedObject, `role "%s" does not exist`, id.Name), id.Pos)
				}
				targets = append(targets, u)
			}
		}
		for _, u := range targets {
			if st.Revoke {
				u.Privs = slices.DeleteFunc(u.Privs, func(p string) bool { return slices.Contains(privs, p) })
			} else {
				u.Privs = append(u.Privs, privs...)
			}
			if err := t.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.w.Complete(st.Command())
}

var aclColumns = []pgwire.Column{{Name: "username", TypeOID: pgwire.OIDName}, {Name: "acl", TypeOID: pgwire.OIDText}}

// listACL shows each user's privileges (a superuser's as "superuser"); a
// user who is not a superuser sees only its own row. LIST ACL and LIST ACL
// ALL are the same here: AntDB's ALL also lists its internal roles.
func (m *Manager) listACL(e *req, st *parser.ListACL) error {
	us, err := m.cat.Users(e.ctx)
	if err != nil {
		return err
	}
	me, _, err := m.cat.User(e.ctx, e.sess.User)
	if err != nil {
		return err
	}
	var rows []map[string]string
	for _, u := range us {
		if !me.Superuser && u.Name != me.Name {
			continue
		}
		acl := strings.Join(u.Privs, ",")
		if u.Superuser {
			acl = "superuser"
		}
		rows = append(rows, map[string]string{"username": u.Name, "acl": acl})
	}
	return writeTable(e.w, aclColumns, rows)
}
