package main

import (
	"fmt"
	"image/color"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Bar colours: the kernel grey, then one colour per driver.
var barColors = []color.Color{
	color.RGBA{0x88, 0x88, 0x88, 0xff},
	color.RGBA{0x1f, 0x77, 0xb4, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff},
}

// drawChart writes a PNG: one panel per test with a bar for the kernel and
// one per measured driver, each labelled with its value (and, for a
// driver, its ratio to the kernel).
func drawChart(r *Report, path string) error {
	tests := r.tests()
	const rows = 2
	cols := (len(tests) + rows - 1) / rows
	targets := append([]*Target{}, r.Targets...)
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = "kernel"
		if t.Driver != "" {
			// One line per option (afpacket:w1 -> afpacket / :w1), so
			// that five bars' labels fit under a panel.
			names[i] = "vrouter\n" + strings.ReplaceAll(t.Driver, ":", "\n:")
		}
	}
	grid := make([][]*plot.Plot, rows)
	for y := range grid {
		grid[y] = make([]*plot.Plot, cols)
		for x := range grid[y] {
			i := y*cols + x
			if i >= len(tests) {
				grid[y][x] = nil
				continue
			}
			p, err := panel(r, tests[i], targets, names)
			if err != nil {
				return err
			}
			grid[y][x] = p
		}
	}
	w, h := vg.Length(4*cols)*vg.Inch, 9*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	// Title and key across the top.
	title := plot.New().Title.TextStyle
	title.Font.Size = vg.Points(18)
	title.XAlign = draw.XCenter
	date := r.Date
	if t, err := time.Parse(time.RFC3339, r.Date); err == nil {
		date = t.Format("2006-01-02 15:04 UTC")
	}
	kernel := "ip_forward + nftables masquerade"
	if r.Filter != nil {
		kernel += "; filter: nftables sets"
	}
	dc.FillText(title, vg.Point{X: w / 2, Y: h - vg.Points(26)},
		"vrouter vs the Linux kernel ("+kernel+"), same netns topology, one run")
	sub := title
	sub.Font.Size = vg.Points(12)
	dc.FillText(sub, vg.Point{X: w / 2, Y: h - vg.Points(46)},
		fmt.Sprintf("make bench, %s, %d CPUs, Linux %s, vrouter %s; over each vrouter bar: value and x ratio to the kernel",
			date, r.Host.CPUs, r.Host.Kernel, r.Host.Vrouter))
	body := draw.Crop(dc, 0, 0, 0, -vg.Points(64))
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadTop: vg.Points(6), PadBottom: vg.Points(8),
		PadLeft: vg.Points(8), PadRight: vg.Points(12), PadX: vg.Points(24), PadY: vg.Points(24)}
	for y := range grid {
		for x := range grid[y] {
			if grid[y][x] != nil {
				grid[y][x].Draw(tiles.At(body, x, y))
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panel is one test's bar chart.
func panel(r *Report, def testDef, targets []*Target, names []string) (*plot.Plot, error) {
	p := plot.New()
	better := "higher is better"
	if !def.Higher {
		better = "lower is better"
	}
	p.Title.Text = def.Name + "\n" + def.Unit + ", " + better
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Y.Min = 0
	p.Y.Label.Text = def.Unit
	p.Y.Tick.Label.Font.Size = vg.Points(10)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Add(plotter.NewGrid())
	p.NominalX(names...)
	max := 0.0
	var lx plotter.XYLabels
	for i, t := range targets {
		v, ok := t.Results[def.ID]
		label := "error"
		if ok {
			label = format(def.Unit, v)
			if t.Driver != "" {
				if q, ok := r.Ratios[t.Driver][def.ID]; ok {
					label += fmt.Sprintf("\nx %.2f", q)
				}
			}
			if def.ID == "udp64_filter" && t.Filter != nil && !t.Filter.Active {
				label += "\nNOT filtered"
			}
			bars, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(44))
			if err != nil {
				return nil, err
			}
			bars.XMin = float64(i)
			bars.Color = barColors[i%len(barColors)]
			bars.LineStyle.Width = 0
			p.Add(bars)
			if v > max {
				max = v
			}
		} else if _, bad := t.Errors[def.ID]; !bad {
			label = "-"
		}
		lx.XYs = append(lx.XYs, plotter.XY{X: float64(i), Y: v})
		lx.Labels = append(lx.Labels, label)
	}
	if max == 0 {
		max = 1
	}
	p.Y.Max = max * 1.3
	p.X.Min, p.X.Max = -0.6, float64(len(targets))-0.4
	p.Y.Tick.Marker = plainTicks{}
	labels, err := plotter.NewLabels(lx)
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].XAlign = draw.XCenter
		labels.TextStyle[i].YAlign = draw.YBottom
		labels.TextStyle[i].Font.Size = vg.Points(11)
	}
	labels.Offset = vg.Point{Y: vg.Points(4)}
	p.Add(labels)
	return p, nil
}

// plainTicks are the default ticks labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', 6, 64)
		}
	}
	return ts
}
