package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

// DefaultEtcdPrefix is the key prefix of store.etcd when "prefix" is absent.
const DefaultEtcdPrefix = "/atrax"

// Store is the "store" object: where the control plane keeps its state
// when it is not the embedded file under dataDir.
type Store struct {
	// Etcd, when set, keeps the state in an etcd cluster that several
	// control-plane replicas share.
	Etcd *Etcd
}

// Etcd is the "store.etcd" object.
type Etcd struct {
	// Endpoints are the members' client URLs: http://HOST:PORT,
	// https://HOST:PORT or HOST:PORT.
	Endpoints []string
	// TLS, when set, says what the control plane trusts and presents when
	// it dials etcd.
	TLS *EtcdTLS
	// Username and Password authenticate to etcd; both or neither.
	Username string
	Password string
	// Prefix comes before every key the control plane writes, so that
	// several deployments can share one etcd; DefaultEtcdPrefix when absent.
	Prefix string
}

// EtcdTLS is "store.etcd.tls": PEM files, expanded and, when relative,
// taken relative to the config file's directory (see Config.File).
type EtcdTLS struct {
	// CA holds the CA certificates that sign the members' certificates;
	// empty means the system's roots.
	CA string
	// Cert and Key are the client certificate the control plane presents;
	// both or neither.
	Cert string
	Key  string
}

// store decodes the "store" object.
func (d *decoder) store(path string, v *hujson.Value) Store {
	var st Store
	members, ok := d.object(path, v)
	if !ok {
		return st
	}
	for _, m := range members {
		switch m.key {
		case "etcd":
			st.Etcd = d.etcd(m.path, m.val)
		default:
			d.unknown(m)
		}
	}
	return st
}

// etcd decodes "store.etcd".
func (d *decoder) etcd(path string, v *hujson.Value) *Etcd {
	e := &Etcd{Prefix: DefaultEtcdPrefix}
	members, ok := d.object(path, v)
	if !ok {
		return e
	}
	var endpointPaths []string
	for _, m := range members {
		switch m.key {
		case "endpoints":
			e.Endpoints, _ = d.strings(m.path, m.val, true, func(p, s string) bool {
				if err := checkEndpoint(s); err != "" {
					d.add(p, err)
					return false
				}
				endpointPaths = append(endpointPaths, p)
				return true
			})
			if arr, ok := m.val.Value.(*hujson.Array); ok && len(arr.Elements) == 0 {
				d.add(m.path, "must name at least one etcd member")
			}
		case "tls":
			e.TLS = d.etcdTLS(m.path, m.val)
		case "username":
			e.Username, _ = d.nonEmpty(m.path, m.val)
		case "password":
			e.Password, _ = d.nonEmpty(m.path, m.val)
		case "prefix":
			p, ok := d.nonEmpty(m.path, m.val)
			if !ok {
				break
			}
			if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\r\n") {
				d.add(m.path, `must start with "/" and hold no spaces, such as "/atrax"`)
				break
			}
			e.Prefix = p
		default:
			d.unknown(m)
		}
	}
	if !hasMember(members, "endpoints") {
		d.add(join(path, "endpoints"), `required: the etcd members' client URLs, such as ["https://etcd-0:2379"]`)
	}
	if hasUser, hasPassword := hasMember(members, "username"), hasMember(members, "password"); hasUser != hasPassword {
		if hasUser {
			d.add(join(path, "password"), "required with store.etcd.username")
		} else {
			d.add(join(path, "username"), "required with store.etcd.password")
		}
	}
	if e.TLS != nil {
		for i, ep := range e.Endpoints {
			if i < len(endpointPaths) && strings.HasPrefix(strings.ToLower(ep), "http://") {
				d.add(endpointPaths[i], `uses http:// while store.etcd.tls is set: write https:// (or no scheme)`)
			}
		}
	}
	return e
}

// checkEndpoint accepts http://HOST:PORT, https://HOST:PORT and HOST:PORT;
// it returns what is wrong, or "".
func checkEndpoint(s string) string {
	const want = `must be http://HOST:PORT, https://HOST:PORT or HOST:PORT`
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return want
		}
		hostport = u.Host
	}
	if err := checkAddress(hostport); err != nil {
		return want
	}
	host, port, _ := net.SplitHostPort(hostport)
	if n, _ := strconv.Atoi(port); host == "" || n == 0 {
		return want + ", with a host and a port other than 0"
	}
	return ""
}

// etcdTLS decodes "store.etcd.tls".
func (d *decoder) etcdTLS(path string, v *hujson.Value) *EtcdTLS {
	members, ok := d.object(path, v)
	if !ok {
		return nil
	}
	t := &EtcdTLS{}
	for _, m := range members {
		switch m.key {
		case "ca":
			t.CA, _ = d.nonEmpty(m.path, m.val)
		case "cert":
			t.Cert, _ = d.nonEmpty(m.path, m.val)
		case "key":
			t.Key, _ = d.nonEmpty(m.path, m.val)
		default:
			d.unknown(m)
		}
	}
	if hasCert, hasKey := hasMember(members, "cert"), hasMember(members, "key"); hasCert != hasKey {
		if hasCert {
			d.add(join(path, "key"), "required with store.etcd.tls.cert: the private key of the client certificate")
		} else {
			d.add(join(path, "cert"), "required with store.etcd.tls.key: the client certificate")
		}
	}
	return t
}
