package console

// show ha, ha state, and the HA metrics.

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vrouter/router"
)

// haJSON is show ha -j.
type haJSON struct {
	State         string      `json:"state"` // standalone | master | backup | fault
	Since         string      `json:"since"` // RFC 3339
	Previous      string      `json:"previous,omitempty"`
	Cause         string      `json:"cause,omitempty"`
	Transitions   uint64      `json:"transitions"`
	Local         string      `json:"local,omitempty"`
	Peer          string      `json:"peer,omitempty"`
	Port          int         `json:"port,omitempty"`
	Authenticated bool        `json:"authenticated"`
	Sessions      int         `json:"sessions"`
	Sync          *haSyncJSON `json:"sync,omitempty"`
}

type haSyncJSON struct {
	PeerUp           bool   `json:"peer_up"`
	PeerMaster       bool   `json:"peer_master"`
	PeerLastHeard    string `json:"peer_last_heard,omitempty"`
	SessionsSent     uint64 `json:"sessions_sent"`
	SessionsReceived uint64 `json:"sessions_received"`
	SessionsAcked    uint64 `json:"sessions_acked"`
	SessionsLost     uint64 `json:"sessions_lost"`
	Retransmits      uint64 `json:"retransmits"`
	ResyncsRequested uint64 `json:"resyncs_requested"`
	ResyncsServed    uint64 `json:"resyncs_served"`
	Unacked          int64  `json:"unacked"`
	QueueFull        uint64 `json:"queue_full"`
}

func haView(r *router.Router) haJSON {
	h := r.HA()
	j := haJSON{State: h.State, Since: h.Since.UTC().Format(time.RFC3339Nano), Previous: h.Previous, Cause: h.Cause,
		Transitions: h.Transitions, Authenticated: h.Authenticated, Sessions: h.Sessions}
	if h.Enabled {
		j.Local, j.Peer, j.Port = h.Local.String(), h.Peer.String(), h.Port
	}
	if h.Syncing {
		s := h.Sync
		j.Sync = &haSyncJSON{PeerUp: s.PeerUp, PeerMaster: s.PeerMaster, SessionsSent: s.SessionsSent,
			SessionsReceived: s.SessionsReceived, SessionsAcked: s.SessionsAcked, SessionsLost: s.SessionsLost,
			Retransmits: s.Retransmits, ResyncsRequested: s.ResyncsRequested, ResyncsServed: s.ResyncsServed,
			Unacked: s.Unacked, QueueFull: h.QueueFull}
		if !s.PeerSeen.IsZero() {
			j.Sync.PeerLastHeard = s.PeerSeen.UTC().Format(time.RFC3339Nano)
		}
	}
	return j
}

func (c *Console) cmdShowHA(args []string, js bool) (string, error) {
	if len(args) != 0 {
		return "", fmt.Errorf("usage: show ha")
	}
	h := haView(c.r)
	if js {
		return toJSON(h)
	}
	if h.Local == "" {
		return "high availability is off (no [ha] section)\n", nil
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "state\t%s\n", h.State)
		last := h.Since
		if h.Previous != "" {
			last = fmt.Sprintf("%s -> %s at %s", h.Previous, h.State, h.Since)
		}
		fmt.Fprintf(tw, "last transition\t%s (%s)\n", last, dash(h.Cause))
		fmt.Fprintf(tw, "transitions\t%d\n", h.Transitions)
		auth := "no ([ha] key not set)"
		if h.Authenticated {
			auth = "HMAC-SHA256"
		}
		fmt.Fprintf(tw, "sync\t%s -> %s udp/%d, authentication %s\n", h.Local, h.Peer, h.Port, auth)
		fmt.Fprintf(tw, "sessions\t%d\n", h.Sessions)
		s := h.Sync
		if s == nil {
			fmt.Fprintf(tw, "peer\tsync not running\n")
			return
		}
		peer := "down"
		if s.PeerUp {
			peer = "up"
			if s.PeerMaster {
				peer += ", master"
			}
		}
		if s.PeerLastHeard != "" {
			peer += ", last heard " + s.PeerLastHeard
		}
		fmt.Fprintf(tw, "peer\t%s\n", peer)
		fmt.Fprintf(tw, "sessions sent\t%d\n", s.SessionsSent)
		fmt.Fprintf(tw, "sessions acked\t%d\n", s.SessionsAcked)
		fmt.Fprintf(tw, "sessions received\t%d\n", s.SessionsReceived)
		fmt.Fprintf(tw, "sessions lost\t%d\n", s.SessionsLost)
		fmt.Fprintf(tw, "retransmits\t%d\n", s.Retransmits)
		fmt.Fprintf(tw, "resyncs\trequested %d, served %d\n", s.ResyncsRequested, s.ResyncsServed)
		fmt.Fprintf(tw, "unacked datagrams\t%d\n", s.Unacked)
		fmt.Fprintf(tw, "queue full\t%d\n", s.QueueFull)
	}), nil
}

func (c *Console) cmdHAState(args []string, js bool) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("usage: ha state master|backup|fault")
	}
	if err := c.r.SetHAState(strings.ToLower(args[0]), "console: ha state "+args[0]); err != nil {
		return "", err
	}
	if js {
		return toJSON(haView(c.r))
	}
	return "", nil
}

// haMetrics: the state as vrouter_ha_state{state} (1 for the current one)
// and when it was entered; the sync's counters are declared ones
// (vrouter_ha_events_total and _drops_total).
type haMetrics struct {
	state, since, peerUp, sessions *prometheus.Desc
}

func newHAMetrics() haMetrics {
	return haMetrics{
		state:    prometheus.NewDesc("vrouter_ha_state", "HA state: 1 for the current one (standalone, master, backup, fault).", []string{"state"}, nil),
		since:    prometheus.NewDesc("vrouter_ha_last_transition_seconds", "Unix time of the last HA state change (or of the start).", nil, nil),
		peerUp:   prometheus.NewDesc("vrouter_ha_peer_up", "1 when the HA peer was heard within the last second.", nil, nil),
		sessions: prometheus.NewDesc("vrouter_ha_sessions", "Sessions in the conntrack table (compare the two routers of a pair).", nil, nil),
	}
}

func (m *haMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.state, m.since, m.peerUp, m.sessions} {
		ch <- d
	}
}

func (m *haMetrics) collect(r *router.Router, ch chan<- prometheus.Metric) {
	h := r.HA()
	for _, s := range []string{"standalone", "master", "backup", "fault"} {
		v := 0.0
		if s == h.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(m.since, prometheus.GaugeValue, float64(h.Since.UnixNano())/1e9)
	up := 0.0
	if h.Syncing && h.Sync.PeerUp {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(m.peerUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(m.sessions, prometheus.GaugeValue, float64(h.Sessions))
}
