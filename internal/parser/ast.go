// Package parser turns the manager's command language — AntDB's adbmgr
// grammar plus the read-only SQL and driver noise a client sends — into one
// AST struct per statement. It is hand written (lexer + recursive descent) so
// that every syntax error carries the offending token's position and says
// what was expected.
package parser

// Ident is a name as written by the user: folded to lower case unless it was
// double-quoted. Pos is the 0-based byte offset of its first character in the
// query string.
type Ident struct {
	Name string
	Pos  int
}

// ValueKind tells how an option value was written.
type ValueKind int

const (
	ValueNone   ValueKind = iota // "(name)" with no value
	ValueIdent                   // bare word or keyword, folded to lower case
	ValueString                  // 'single quoted' or "double quoted" (kept verbatim, not folded)
	ValueNumber                  // integer or decimal literal, as written (sign included)
)

// Option is one "name = value" (or "name value", or bare "name") inside the
// parentheses of a command.
type Option struct {
	Name     Ident
	Value    string
	Kind     ValueKind
	ValuePos int // offset of the value token; equal to Name.Pos when Kind is ValueNone
}

// Family is a node family: the word after ADD/ALTER/DROP/START…
type Family int

const (
	FamilyNone Family = iota
	Gtmcoord
	Coordinator
	Datanode
)

func (f Family) String() string {
	switch f {
	case Gtmcoord:
		return "gtmcoord"
	case Coordinator:
		return "coordinator"
	case Datanode:
		return "datanode"
	}
	return ""
}

// Role is MASTER or SLAVE; RoleAny when the statement did not say.
type Role int

const (
	RoleAny Role = iota
	Master
	Slave
)

func (r Role) String() string {
	switch r {
	case Master:
		return "master"
	case Slave:
		return "slave"
	}
	return ""
}

// NodeKind is a family with an optional role, as written in a statement.
type NodeKind struct {
	Family Family
	Role   Role
	Pos    int // offset of the family keyword
}

// Statement is one parsed statement. Pos is the offset of its first token,
// End the offset just past its last token (before any ';').
type Statement interface {
	Span() (pos, end int)
	// Command is the statement's name for messages and command tags,
	// e.g. "ADD NODE", "LIST HOST", "INIT ALL", "FAILOVER".
	Command() string
}

// Base carries the span of a statement; every AST struct embeds it.
type Base struct {
	Pos, End int
}

// Span implements Statement.
func (b Base) Span() (int, int) { return b.Pos, b.End }

// ---------------------------------------------------------------- hosts

// AddHost is ADD HOST [IF NOT EXISTS] name (options).
type AddHost struct {
	Base
	IfNotExists bool
	Name        Ident
	Options     []Option
}

// AlterHost is ALTER HOST name (options).
type AlterHost struct {
	Base
	Name    Ident
	Options []Option
}

// DropHost is DROP HOST [IF EXISTS] name [, …].
type DropHost struct {
	Base
	IfExists bool
	Names    []Ident
}

// ListHost is LIST HOST [(col, …)] [name, …].
type ListHost struct {
	Base
	Columns []Ident
	Names   []Ident
}

// ---------------------------------------------------------------- nodes

// AddNode is ADD {GTMCOORD|COORDINATOR|DATANODE} {MASTER name | SLAVE name FOR master} (options).
type AddNode struct {
	Base
	Kind    NodeKind // Role is Master or Slave, never RoleAny
	Name    Ident
	For     Ident // the FOR target; empty Name for masters
	Options []Option
}

// AlterNode is ALTER {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE} name (options).
type AlterNode struct {
	Base
	Kind    NodeKind
	Name    Ident
	Options []Option
}

// DropNode is DROP {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE} name [, …].
type DropNode struct {
	Base
	Kind  NodeKind
	Names []Ident
}

// DropZone is DROP ZONE zonename.
type DropZone struct {
	Base
	Zone Ident
}

// ListNodeFilter selects which LIST NODE form was written.
type ListNodeFilter int

const (
	ListNodeAll            ListNodeFilter = iota // LIST NODE [(cols)] [names]
	ListNodeByKind                               // LIST NODE {COORDINATOR|DATANODE|GTMCOORD} [MASTER|SLAVE]
	ListNodeDatanodeMaster                       // LIST NODE DATANODE MASTER name: the master and its slaves
	ListNodeHost                                 // LIST NODE HOST h [, …]
	ListNodeZone                                 // LIST NODE ZONE z
)

// ListNode is every form of LIST NODE. Columns is the optional projection;
// Names holds node names (ListNodeAll), host names (ListNodeHost), the master
// name (ListNodeDatanodeMaster) or the zone (ListNodeZone).
type ListNode struct {
	Base
	Filter  ListNodeFilter
	Kind    NodeKind // for ListNodeByKind
	Columns []Ident
	Names   []Ident
}

// ---------------------------------------------------------------- help, SQL, session

// Help is HELP [word …]; Words are folded to lower case.
type Help struct {
	Base
	Words []string
}

// Select is a read-only SQL query (SELECT, WITH, VALUES, TABLE) passed
// verbatim to the catalog's read-only connection. Text excludes the ';'.
type Select struct {
	Base
	Text string
}

// WriteSQL is SQL that would write (INSERT, UPDATE, DELETE, CREATE, …): the
// manager refuses it. Verb is the first keyword, upper-cased.
type WriteSQL struct {
	Base
	Verb string
}

// SetVar is SET [SESSION|LOCAL] name {=|TO} value [, …] | SET name TO DEFAULT,
// and SET TIME ZONE value. Value is the text of the value (strings unquoted,
// lists joined with ", "); Default is true for DEFAULT.
type SetVar struct {
	Base
	Name    Ident
	Value   string
	Default bool
	Local   bool // SET LOCAL: only until the end of the transaction
}

// ResetVar is RESET name | RESET ALL (Name "all").
type ResetVar struct {
	Base
	Name Ident
}

// ShowVar is SHOW name | SHOW ALL (but not SHOW PARAM / SHOW HBA / SHOW BOOTTIME).
type ShowVar struct {
	Base
	Name Ident
}

// Transaction is BEGIN / START TRANSACTION / COMMIT / END / ROLLBACK / ABORT,
// accepted as no-ops because catalog commands are each atomic. Verb is the
// canonical tag: "BEGIN", "COMMIT" or "ROLLBACK" (also for ROLLBACK TO
// SAVEPOINT), or "SAVEPOINT" / "RELEASE".
type Transaction struct {
	Base
	Verb     string
	ReadOnly string // BEGIN READ ONLY: "on"; READ WRITE: "off"; else ""
}

// SetTransaction is SET TRANSACTION mode [, …] and SET SESSION
// CHARACTERISTICS AS TRANSACTION mode [, …], as drivers send them at
// connect. Each field is empty when its mode was not given.
type SetTransaction struct {
	Base
	Session    bool   // SESSION CHARACTERISTICS: the session's default
	Isolation  string // "serializable", "repeatable read", "read committed", "read uncommitted"
	ReadOnly   string // "on" (READ ONLY), "off" (READ WRITE)
	Deferrable string // "on", "off"
}

// Discard is DISCARD {ALL | PLANS | SEQUENCES | TEMP | TEMPORARY}, as
// PgBouncer sends between clients; What is upper case ("TEMP" for both
// spellings).
type Discard struct {
	Base
	What string
}

// Deallocate is DEALLOCATE [PREPARE] {name | ALL}.
type Deallocate struct {
	Base
	Name string
	All  bool
}

// ---------------------------------------------------------------- the wider command set
//
// These statements parse fully (so a typo is a syntax error at the right
// place) but are executed by later issues; until then the executor answers
// SQLSTATE 0A000. Fields are filled so the executor can be written without
// touching the parser.

// AgentTarget is ALL or a list of host names.
type AgentTarget struct {
	All   bool
	Hosts []Ident
}

// StartAgent is START AGENT {ALL | h [, …]} [PASSWORD pw].
type StartAgent struct {
	Base
	Target      AgentTarget
	Password    string
	PasswordSet bool // PASSWORD was written ('' included)
}

// StopAgent is STOP AGENT {ALL | h [, …]}.
type StopAgent struct {
	Base
	Target AgentTarget
}

// MonitorAgent is MONITOR AGENT [ALL | h [, …]] (no target = ALL).
type MonitorAgent struct {
	Base
	Target AgentTarget
}

// RotateCertificates is ROTATE CERTIFICATES [CA] (adbmgr's, not AntDB's):
// new certificates for the manager and every running agent; with CA, a new
// certificate authority first.
type RotateCertificates struct {
	Base
	CA bool
}

// Deploy is DEPLOY {ALL | h [, …]} [PASSWORD pw].
type Deploy struct {
	Base
	Target      AgentTarget
	Password    string
	PasswordSet bool // PASSWORD was written ('' included)
}

// InitAll is INIT ALL [DATA_CHECKSUMS] [(walsegsize = N)].
type InitAll struct {
	Base
	DataChecksums bool
	Options       []Option
}

// NodeTarget names the nodes a life-cycle command acts on:
// ALL (every node), a family (Kind.Family set, Role any, All true),
// a family+role with ALL, or a family+role with names.
type NodeTarget struct {
	All   bool // START ALL, or "… ALL" after a kind
	Kind  NodeKind
	Names []Ident
	Zone  Ident // START ZONE z / STOP ZONE z / CLEAN ZONE z / MONITOR ZONE z
}

// StopMode is STOP's MODE; the zero value is smart.
type StopMode string

const (
	ModeSmart     StopMode = "smart"
	ModeFast      StopMode = "fast"
	ModeImmediate StopMode = "immediate"
)

// StartNodes is START ALL | START {family} ALL | START family role {ALL|n, …} | START ZONE z.
type StartNodes struct {
	Base
	Target NodeTarget
}

// StopNodes is STOP … [MODE {smart|s|fast|f|immediate|i}].
type StopNodes struct {
	Base
	Target NodeTarget
	Mode   StopMode
}

// Monitor is MONITOR [ALL] and the per-type forms, MONITOR ZONE z.
type Monitor struct {
	Base
	Target NodeTarget
}

// MonitorHA is MONITOR HA [(cols)] [n, …] | MONITOR HA ZONE z.
type MonitorHA struct {
	Base
	Columns []Ident
	Names   []Ident
	Zone    Ident
}

// Clean is CLEAN ALL | CLEAN family role n [, …] | CLEAN ZONE z | CLEAN MONITOR days.
type Clean struct {
	Base
	Target      NodeTarget
	MonitorDays int // CLEAN MONITOR N; -1 when not that form
}

// SetParam is SET {family} [role] {ALL | n} (k = v, …) [FORCE], and RESET
// with the same shape (Reset true; values may be absent).
type SetParam struct {
	Base
	Reset  bool
	Target NodeTarget
	Params []Option
	Force  bool
}

// ListParam is LIST PARAM [family [role] {ALL | n} [pattern]].
type ListParam struct {
	Base
	Target  NodeTarget
	Pattern string
}

// ShowParam is SHOW PARAM n pattern.
type ShowParam struct {
	Base
	Node    Ident
	Pattern string
}

// AddHBA is ADD HBA family {ALL | n} ("line" [, …]).
type AddHBA struct {
	Base
	Target NodeTarget
	Lines  []string
}

// DropHBA is DROP HBA {ALL | n} [("line" [, …])].
type DropHBA struct {
	Base
	All   bool
	Node  Ident
	Lines []string
}

// ListHBA is LIST HBA [n, …].
type ListHBA struct {
	Base
	Names []Ident
}

// ShowHBA is SHOW HBA {ALL | n [, …]}.
type ShowHBA struct {
	Base
	All   bool
	Names []Ident
}

// Append is APPEND {GTMCOORD SLAVE|DATANODE {MASTER|SLAVE}|COORDINATOR {MASTER|SLAVE}} n,
// APPEND COORDINATOR dest FOR src, APPEND ACTIVATE COORDINATOR n.
type Append struct {
	Base
	Kind          NodeKind // Role is RoleAny for "dest FOR src" and ACTIVATE
	Name          Ident
	Source        Ident // APPEND COORDINATOR dest FOR src
	Activate      bool
	DataChecksums bool     // APPEND {DATANODE|COORDINATOR} MASTER n DATA_CHECKSUMS
	Options       []Option // APPEND {DATANODE|COORDINATOR} MASTER n (walsegsize = N)
}

// Remove is REMOVE family role n [, …].
type Remove struct {
	Base
	Kind  NodeKind
	Names []Ident
}

// Failover is FAILOVER {GTMCOORD|DATANODE} master [TO slave] [FORCE].
type Failover struct {
	Base
	Kind  NodeKind
	Name  Ident
	To    Ident
	Force bool
}

// Switchover is SWITCHOVER {GTMCOORD|DATANODE} SLAVE s [FORCE] [maxTrys].
type Switchover struct {
	Base
	Kind    NodeKind
	Name    Ident
	Force   bool
	MaxTrys int // 0 when not given
}

// Rewind is REWIND family SLAVE n [BASEBACKUP]: with BASEBACKUP the node
// is made a slave again from a fresh base backup instead of pg_rewind.
type Rewind struct {
	Base
	Kind       NodeKind
	Name       Ident
	BaseBackup bool
}

// Promote is PROMOTE family role n, and ADBMGR PROMOTE family SLAVE n (Catalog true).
type Promote struct {
	Base
	Kind    NodeKind
	Name    Ident
	Catalog bool
}

// ConfigSlave is CONFIG DATANODE SLAVE n.
type ConfigSlave struct {
	Base
	Name Ident
}

// Expand is every EXPAND form; Action is "datanode" (EXPAND DATANODE MASTER
// src TO dst), "activate", "clean", "recover basebackup success",
// "recover basebackup fail", "activate recover dopromote success",
// "docheck status", "show status", "sleep".
type Expand struct {
	Base
	Action string
	Src    Ident
	Dst    Ident
	Sleep  int
}

// Zone is ZONE FAILOVER z [FORCE] | ZONE SWITCHOVER z [FORCE] [maxTrys] | ZONE INIT z.
type Zone struct {
	Base
	Action  string // "failover", "switchover", "init"
	Zone    Ident
	Force   bool
	MaxTrys int
}

// Doctor is START DOCTOR | STOP DOCTOR | SET DOCTOR (…) | SET DOCTOR {NODE|HOST} n {ON|OFF} | LIST DOCTOR.
type Doctor struct {
	Base
	Action  string // "start", "stop", "set", "set node", "set host", "list"
	Name    Ident
	On      bool
	Options []Option
}

// Flush is FLUSH HOST | FLUSH PARAM | FLUSH READONLY SLAVE.
type Flush struct {
	Base
	What string // "host", "param", "readonly slave"
}

// ShowBoottime is SHOW BOOTTIME [ALL] and its per-type forms.
type ShowBoottime struct {
	Base
	Target NodeTarget
}

// ListNodeSize is LIST NODE [PRETTY] SIZE {ALL | n [, …]} [WITH SLINK].
type ListNodeSize struct {
	Base
	Pretty bool
	All    bool
	Names  []Ident
	Slink  bool
}

// Checkout is CHECKOUT DATANODE SLAVE STATUS.
type Checkout struct {
	Base
}

// SetClusterInit is SET CLUSTER INIT.
type SetClusterInit struct {
	Base
}

// UserStmt is CREATE USER name [[WITH] PASSWORD 'pw' | SUPERUSER …] or
// ALTER USER name [WITH] {PASSWORD {'pw' | NULL} | [NO]SUPERUSER}.
type UserStmt struct {
	Base
	Create bool
	Name   Ident
	// PasswordSet tells that PASSWORD was given; Password is "" for NULL.
	PasswordSet bool
	Password    string
	Superuser   *bool // nil: not given
}

// DropUser is DROP USER [IF EXISTS] name [, …].
type DropUser struct {
	Base
	IfExists bool
	Names    []Ident
}

// Grant is GRANT {priv [, …] | ALL} TO {user [, …] | ALL}, or REVOKE … FROM.
type Grant struct {
	Base
	Revoke   bool
	AllPrivs bool
	Privs    []string
	AllUsers bool
	Users    []Ident
}

// ListACL is LIST ACL [ALL].
type ListACL struct {
	Base
	All bool
}

// Other is a recognised command of the wider AntDB set that this manager
// does not model in detail (jobs, items, users, privileges, extensions,
// monitoring-UI functions). Name is its canonical command name, e.g.
// "ADD JOB", "GRANT"; the rest of the statement is skipped up to ';'.
type Other struct {
	Base
	Name string
}

// Command implementations: the names used in command tags and messages.

func (*AddHost) Command() string        { return "ADD HOST" }
func (*AlterHost) Command() string      { return "ALTER HOST" }
func (*DropHost) Command() string       { return "DROP HOST" }
func (*ListHost) Command() string       { return "LIST HOST" }
func (*AddNode) Command() string        { return "ADD NODE" }
func (*AlterNode) Command() string      { return "ALTER NODE" }
func (*DropNode) Command() string       { return "DROP NODE" }
func (*DropZone) Command() string       { return "DROP ZONE" }
func (*ListNode) Command() string       { return "LIST NODE" }
func (*Help) Command() string           { return "HELP" }
func (*Select) Command() string         { return "SELECT" }
func (s *WriteSQL) Command() string     { return s.Verb }
func (*SetVar) Command() string         { return "SET" }
func (*ResetVar) Command() string       { return "RESET" }
func (*ShowVar) Command() string        { return "SHOW" }
func (s *Transaction) Command() string  { return s.Verb }
func (*SetTransaction) Command() string { return "SET" }
func (s *Discard) Command() string      { return "DISCARD " + s.What }
func (*Deallocate) Command() string     { return "DEALLOCATE" }
func (*StartAgent) Command() string     { return "START AGENT" }
func (*StopAgent) Command() string      { return "STOP AGENT" }
func (*MonitorAgent) Command() string   { return "MONITOR AGENT" }
func (*Deploy) Command() string         { return "DEPLOY" }
func (*InitAll) Command() string        { return "INIT ALL" }
func (*StartNodes) Command() string     { return "START" }
func (*StopNodes) Command() string      { return "STOP" }
func (*Monitor) Command() string        { return "MONITOR" }
func (*MonitorHA) Command() string      { return "MONITOR HA" }
func (*Clean) Command() string          { return "CLEAN" }
func (*ListParam) Command() string      { return "LIST PARAM" }
func (*ShowParam) Command() string      { return "SHOW PARAM" }
func (*AddHBA) Command() string         { return "ADD HBA" }
func (*DropHBA) Command() string        { return "DROP HBA" }
func (*ListHBA) Command() string        { return "LIST HBA" }
func (*ShowHBA) Command() string        { return "SHOW HBA" }
func (*Remove) Command() string         { return "REMOVE NODE" }
func (*Failover) Command() string       { return "FAILOVER" }
func (*Switchover) Command() string     { return "SWITCHOVER" }
func (*Rewind) Command() string         { return "REWIND" }
func (*ConfigSlave) Command() string    { return "CONFIG DATANODE SLAVE" }
func (*Expand) Command() string         { return "EXPAND" }
func (*Zone) Command() string           { return "ZONE" }
func (*Doctor) Command() string         { return "DOCTOR" }
func (*ShowBoottime) Command() string   { return "SHOW BOOTTIME" }
func (*ListNodeSize) Command() string   { return "LIST NODE SIZE" }
func (*Checkout) Command() string       { return "CHECKOUT" }
func (*SetClusterInit) Command() string { return "SET CLUSTER INIT" }
func (s *Other) Command() string        { return s.Name }
func (*DropUser) Command() string       { return "DROP USER" }
func (*ListACL) Command() string        { return "LIST ACL" }

func (s *UserStmt) Command() string {
	if s.Create {
		return "CREATE USER"
	}
	return "ALTER USER"
}

func (s *Grant) Command() string {
	if s.Revoke {
		return "REVOKE"
	}
	return "GRANT"
}

func (s *SetParam) Command() string {
	if s.Reset {
		return "RESET PARAM"
	}
	return "SET PARAM"
}

func (s *Append) Command() string {
	if s.Activate {
		return "APPEND ACTIVATE"
	}
	return "APPEND"
}

func (s *Promote) Command() string {
	if s.Catalog {
		return "ADBMGR PROMOTE"
	}
	return "PROMOTE"
}

func (s *Flush) Command() string { return "FLUSH " + upper(s.What) }

func (s *RotateCertificates) Command() string {
	if s.CA {
		return "ROTATE CERTIFICATES CA"
	}
	return "ROTATE CERTIFICATES"
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
