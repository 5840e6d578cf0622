package config

import (
	"errors"
	"net"

	"github.com/tailscale/hujson"
)

// controlPlane decodes the "controlPlane" object. It reports whether the
// address is usable (for the loopback check of auth "none") and whether a
// token was given (else token mode fills it in).
func (d *decoder) controlPlane(path string, v *hujson.Value) (cp ControlPlane, addressOK, tokenSet bool) {
	cp.Address = DefaultControlPlaneAddress
	addressOK = true
	members, ok := d.object(path, v)
	if !ok {
		return cp, addressOK, false
	}
	for _, m := range members {
		switch m.key {
		case "address":
			s, ok := d.str(m.path, m.val)
			if !ok {
				addressOK = false
				break
			}
			if err := checkAddress(s); err != nil {
				d.add(m.path, err.Error())
				addressOK = false
				break
			}
			cp.Address = s
		case "addresses":
			cp.Addresses, _ = d.strings(m.path, m.val, true, func(p, s string) bool {
				if err := checkDialAddress(s); err != nil {
					d.add(p, err.Error())
					addressOK = false
					return false
				}
				return true
			})
			if arr, ok := m.val.Value.(*hujson.Array); ok && len(arr.Elements) == 0 {
				d.add(m.path, `must name at least one control plane (or leave it out and set "address")`)
			}
		case "token":
			cp.Token, tokenSet = d.nonEmpty(m.path, m.val)
		case "allowCommands":
			cp.AllowCommands = d.allowCommands(m.path, m.val)
		case "metricsAddress":
			s, ok := d.str(m.path, m.val)
			if !ok || s == "" {
				break // empty: no metrics listener
			}
			if err := checkAddress(s); err != nil {
				d.add(m.path, err.Error())
				break
			}
			cp.MetricsAddress = s
		case "tls":
			cp.TLS = d.tls(m.path, m.val, true)
		case "ca":
			cp.CA, _ = d.nonEmpty(m.path, m.val)
		case "clientCert":
			cp.ClientCert, _ = d.nonEmpty(m.path, m.val)
		case "clientKey":
			cp.ClientKey, _ = d.nonEmpty(m.path, m.val)
		default:
			d.unknown(m)
		}
	}
	if hasCert, hasKey := hasMember(members, "clientCert"), hasMember(members, "clientKey"); hasCert != hasKey {
		if !hasCert {
			d.add(join(path, "clientCert"), "required with controlPlane.clientKey: the certificate an edge presents")
		} else {
			d.add(join(path, "clientKey"), "required with controlPlane.clientCert: the private key of the certificate")
		}
	}
	return cp, addressOK, tokenSet
}

// allowCommands accepts true, false or a list of commands.
func (d *decoder) allowCommands(path string, v *hujson.Value) AllowCommands {
	switch v.Value.Kind() {
	case 't', 'f':
		return AllowCommands{All: v.Value.Kind() == 't'}
	case '[':
		cmds, _ := d.strings(path, v, true, func(p, s string) bool {
			if s == "" {
				d.add(p, "must not be empty")
				return false
			}
			return true
		})
		return AllowCommands{Commands: cmds}
	}
	d.typeError(path, "true, false or an array of commands", v)
	return AllowCommands{}
}

// checkDialAddress accepts a host:port an edge can dial: a host and a port
// other than 0.
func checkDialAddress(addr string) error {
	if err := checkAddress(addr); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || port == "0" {
		return errors.New(`must name a host and a port other than 0, such as "cp-0.atrax:4001"`)
	}
	return nil
}

// DialAddresses returns where edges dial the control plane: Addresses when
// set, else Address.
func (cp ControlPlane) DialAddresses() []string {
	if len(cp.Addresses) > 0 {
		return cp.Addresses
	}
	return []string{cp.Address}
}
