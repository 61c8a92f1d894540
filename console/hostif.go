package console

// show host-interfaces and the host interfaces' metrics.

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"

	"vrouter/router"
)

// hostIfJSON is one host interface of show host-interfaces -j.
type hostIfJSON struct {
	Network         string         `json:"network"`
	Device          string         `json:"device"`
	Ifindex         int            `json:"ifindex"`
	MAC             string         `json:"mac"`
	MTU             int            `json:"mtu"`
	PuntRate        int            `json:"punt_rate"`
	Addresses       []hostAddrJSON `json:"addresses"`
	Ignored         []hostAddrJSON `json:"ignored"`
	PuntedPackets   uint64         `json:"punted_packets"`
	PuntedBytes     uint64         `json:"punted_bytes"`
	InjectedPackets uint64         `json:"injected_packets"`
	InjectedBytes   uint64         `json:"injected_bytes"`
	PuntDrops       uint64         `json:"punt_drops"`
	PuntErrors      uint64         `json:"punt_errors"`
}

// hostAddrJSON is one address of a host interface: origin "static" (the
// file's) or "kernel" (added by a daemon); an ignored one says why.
type hostAddrJSON struct {
	Address string `json:"address"`
	Origin  string `json:"origin"`
	Reason  string `json:"reason,omitempty"`
}

func hostIfs(r *router.Router) []hostIfJSON {
	out := []hostIfJSON{}
	for _, h := range r.HostInterfaces() {
		j := hostIfJSON{Network: h.Network, Device: h.Device, Ifindex: h.Ifindex, MAC: h.MAC.String(), MTU: h.MTU,
			PuntRate: h.PuntRate, Addresses: []hostAddrJSON{}, Ignored: []hostAddrJSON{},
			PuntedPackets: h.PuntedPackets, PuntedBytes: h.PuntedBytes, InjectedPackets: h.InjectedPackets,
			InjectedBytes: h.InjectedBytes, PuntDrops: h.PuntDrops, PuntErrors: h.PuntErrors}
		for _, a := range h.Static {
			j.Addresses = append(j.Addresses, hostAddrJSON{Address: a.String(), Origin: "static"})
		}
		for _, a := range h.Kernel {
			j.Addresses = append(j.Addresses, hostAddrJSON{Address: a.String(), Origin: "kernel"})
		}
		for _, a := range h.Ignored {
			j.Ignored = append(j.Ignored, hostAddrJSON{Address: a.Prefix.String(), Origin: "kernel", Reason: a.Reason})
		}
		out = append(out, j)
	}
	return out
}

func (c *Console) cmdHostInterfaces(args []string, js bool) (string, error) {
	if len(args) != 0 {
		return "", fmt.Errorf("usage: show host-interfaces")
	}
	his := hostIfs(c.r)
	if js {
		return toJSON(his)
	}
	if len(his) == 0 {
		return "no host interfaces (set host = \"NAME\" on a network)\n", nil
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NETWORK\tDEVICE\tMAC\tMTU\tADDRESSES\tPUNTED PKTS\tPUNTED BYTES\tINJECTED PKTS\tINJECTED BYTES\tPUNT DROPS\tRATE")
		for _, h := range his {
			var as []string
			for _, a := range h.Addresses {
				s := a.Address
				if a.Origin == "kernel" {
					s += " (kernel)"
				}
				as = append(as, s)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d/s\n", h.Network, h.Device, h.MAC, h.MTU,
				dash(strings.Join(as, ", ")), h.PuntedPackets, h.PuntedBytes, h.InjectedPackets, h.InjectedBytes,
				h.PuntDrops+h.PuntErrors, h.PuntRate)
		}
		for _, h := range his {
			for _, a := range h.Ignored {
				fmt.Fprintf(tw, "\n%s: kernel address %s not used: %s", h.Device, a.Address, a.Reason)
			}
		}
	}), nil
}

// hostMetrics are the host interfaces' metrics, labelled network and
// device.
type hostMetrics struct {
	punted, puntedBytes, injected, injectedBytes, drops, errors, addrs *prometheus.Desc
}

func newHostMetrics() hostMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vrouter_host_"+name, help, append([]string{"network", "device"}, labels...), nil)
	}
	return hostMetrics{
		punted:        d("punted_packets_total", "Packets handed to the network's host interface."),
		puntedBytes:   d("punted_bytes_total", "Bytes handed to the network's host interface."),
		injected:      d("injected_packets_total", "Frames the kernel sent on the host interface, sent out on the network."),
		injectedBytes: d("injected_bytes_total", "Bytes of the frames the kernel sent on the host interface."),
		drops:         d("punt_drops_total", "Packets for the host interface over host_punt_rate, and malformed frames from it."),
		errors:        d("punt_errors_total", "Packets the host interface refused."),
		addrs:         d("addresses", "Addresses of the host interface in use, by origin (static: the file's; kernel: added by a daemon).", "origin"),
	}
}

func (m *hostMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.punted, m.puntedBytes, m.injected, m.injectedBytes, m.drops, m.errors, m.addrs} {
		ch <- d
	}
}

func (m *hostMetrics) collect(r *router.Router, ch chan<- prometheus.Metric) {
	for _, h := range r.HostInterfaces() {
		c := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), h.Network, h.Device)
		}
		c(m.punted, h.PuntedPackets)
		c(m.puntedBytes, h.PuntedBytes)
		c(m.injected, h.InjectedPackets)
		c(m.injectedBytes, h.InjectedBytes)
		c(m.drops, h.PuntDrops)
		c(m.errors, h.PuntErrors)
		ch <- prometheus.MustNewConstMetric(m.addrs, prometheus.GaugeValue, float64(len(h.Static)), h.Network, h.Device, "static")
		ch <- prometheus.MustNewConstMetric(m.addrs, prometheus.GaugeValue, float64(len(h.Kernel)), h.Network, h.Device, "kernel")
	}
}
