// Package metrics is what the floor manager watches on /metrics: stage
// times, cards produced and spoiled (by lane), webhook results, express
// deadlines missed, and, read at scrape time, orders by state, the outbox
// and each lane's state, reader, printer and blanks left.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"id06/order"
)

// Figures is what the metrics read from the database when scraped, and
// the name of the station they are about.
type Figures interface {
	CountByState(ctx context.Context) (map[order.State]int, error)
	OutboxCounts(ctx context.Context, suppliers ...string) (pending, dead int, err error)
	Station() string
}

// Lane is a production lane's state as the metrics show it.
type Lane struct {
	Name                string
	State               string // idle, working, paused, off
	ReaderUp, PrinterUp bool
	Blanks              int // -1: the printer does not say
}

// Metrics counts what the pipeline and the webhooks report.
type Metrics struct {
	reg           *prometheus.Registry
	stage         *prometheus.HistogramVec
	spoiled       *prometheus.CounterVec
	produced      *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	expressMissed prometheus.Counter
}

// New registers the station's metrics, each labelled with the station's
// name; orders by state and the outbox come from figures and the lanes from
// lanes, both when scraped. The named lanes start their counters at zero,
// so a rate over a fresh lane is defined.
func New(figures Figures, names []string, lanes func() []Lane) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "station_stage_seconds", Help: "Time spent in each pipeline stage.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"stage", "lane"}),
		spoiled:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "station_spoiled_blanks_total", Help: "Blank cards spoiled, by lane."}, []string{"lane"}),
		produced:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "station_cards_produced_total", Help: "Cards produced, by lane."}, []string{"lane"}),
		webhooks:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "station_webhook_deliveries_total", Help: "Webhook delivery attempts by result."}, []string{"result"}),
		expressMissed: prometheus.NewCounter(prometheus.CounterOpts{Name: "station_express_deadlines_missed_total", Help: "Express orders produced after their 2-hour deadline."}),
	}
	// Every figure carries the station's name, so that one Prometheus can
	// scrape a whole fleet and tell its stations apart.
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"station": figures.Station()}, m.reg)
	reg.MustRegister(m.stage, m.spoiled, m.produced, m.webhooks, m.expressMissed,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		&stateCollector{figures: figures, lanes: lanes})
	for _, name := range names {
		m.spoiled.WithLabelValues(name)
		m.produced.WithLabelValues(name)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Stage records how long a pipeline stage took on a lane ("" for the photo
// stage, which has none).
func (m *Metrics) Stage(stage, lane string, d time.Duration) {
	m.stage.WithLabelValues(stage, lane).Observe(d.Seconds())
}

// Spoiled counts a spoiled blank ("": an operator's re-production, in no lane).
func (m *Metrics) Spoiled(lane string) { m.spoiled.WithLabelValues(lane).Inc() }

// Produced counts a card produced on a lane.
func (m *Metrics) Produced(lane string) { m.produced.WithLabelValues(lane).Inc() }

// ExpressMissed counts an express order produced after its deadline.
func (m *Metrics) ExpressMissed() { m.expressMissed.Inc() }

// Webhook counts a delivery attempt by its result: delivered, failed or dead.
func (m *Metrics) Webhook(result string) { m.webhooks.WithLabelValues(result).Inc() }

// stateCollector reads the order counts from the database at scrape time, so
// the gauge can never drift from the truth.
type stateCollector struct {
	figures Figures
	lanes   func() []Lane
}

// laneStates are the values of station_lane_state's state label.
var laneStates = []string{"idle", "working", "paused", "off"}

var (
	ordersDesc    = prometheus.NewDesc("station_orders", "Orders by state.", []string{"state"}, nil)
	readerDesc    = prometheus.NewDesc("station_reader_up", "1 when the lane's card reader is ready.", []string{"lane"}, nil)
	printerDesc   = prometheus.NewDesc("station_printer_up", "1 when the lane's printer is ready.", []string{"lane"}, nil)
	laneStateDesc = prometheus.NewDesc("station_lane_state", "1 for the state each lane is in (idle, working, paused, off).", []string{"lane", "state"}, nil)
	blanksDesc    = prometheus.NewDesc("station_lane_blanks", "Blank cards left in the lane's hopper, where the printer says.", []string{"lane"}, nil)
	outboxDesc    = prometheus.NewDesc("station_webhook_outbox", "Webhook notices waiting (pending) or given up (dead).", []string{"status"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ordersDesc
	ch <- readerDesc
	ch <- printerDesc
	ch <- laneStateDesc
	ch <- blanksDesc
	ch <- outboxDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.figures.CountByState(ctx)
	if err == nil {
		for _, st := range order.States {
			ch <- prometheus.MustNewConstMetric(ordersDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	if pending, dead, err := c.figures.OutboxCounts(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(pending), "pending")
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(dead), "dead")
	}
	for _, l := range c.lanes() {
		ch <- prometheus.MustNewConstMetric(readerDesc, prometheus.GaugeValue, b2f(l.ReaderUp), l.Name)
		ch <- prometheus.MustNewConstMetric(printerDesc, prometheus.GaugeValue, b2f(l.PrinterUp), l.Name)
		for _, st := range laneStates {
			ch <- prometheus.MustNewConstMetric(laneStateDesc, prometheus.GaugeValue, b2f(l.State == st), l.Name, st)
		}
		if l.Blanks >= 0 {
			ch <- prometheus.MustNewConstMetric(blanksDesc, prometheus.GaugeValue, float64(l.Blanks), l.Name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
