// Package metrics is what the floor manager watches on /metrics: stage
// times, cards produced and spoiled, webhook results, express deadlines
// missed, and, read at scrape time, orders by state, the outbox and whether
// the reader and printer are up.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"id06/order"
)

// Figures is what the metrics read from the database when scraped.
type Figures interface {
	CountByState(ctx context.Context) (map[order.State]int, error)
	OutboxCounts(ctx context.Context, suppliers ...string) (pending, dead int, err error)
}

// Metrics counts what the pipeline and the webhooks report.
type Metrics struct {
	reg           *prometheus.Registry
	stage         *prometheus.HistogramVec
	spoiled       prometheus.Counter
	produced      prometheus.Counter
	webhooks      *prometheus.CounterVec
	expressMissed prometheus.Counter
}

// New registers the station's metrics; orders by state and the outbox come
// from figures and the devices' state from status, both when scraped.
func New(figures Figures, status func() (readerUp, printerUp bool)) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "station_stage_seconds", Help: "Time spent in each pipeline stage.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"stage"}),
		spoiled:       prometheus.NewCounter(prometheus.CounterOpts{Name: "station_spoiled_blanks_total", Help: "Blank cards spoiled."}),
		produced:      prometheus.NewCounter(prometheus.CounterOpts{Name: "station_cards_produced_total", Help: "Cards produced."}),
		webhooks:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "station_webhook_deliveries_total", Help: "Webhook delivery attempts by result."}, []string{"result"}),
		expressMissed: prometheus.NewCounter(prometheus.CounterOpts{Name: "station_express_deadlines_missed_total", Help: "Express orders produced after their 2-hour deadline."}),
	}
	m.reg.MustRegister(m.stage, m.spoiled, m.produced, m.webhooks, m.expressMissed,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		&stateCollector{figures: figures, status: status})
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Stage records how long a pipeline stage took.
func (m *Metrics) Stage(stage string, d time.Duration) {
	m.stage.WithLabelValues(stage).Observe(d.Seconds())
}

// Spoiled counts a spoiled blank.
func (m *Metrics) Spoiled() { m.spoiled.Inc() }

// Produced counts a card produced.
func (m *Metrics) Produced() { m.produced.Inc() }

// ExpressMissed counts an express order produced after its deadline.
func (m *Metrics) ExpressMissed() { m.expressMissed.Inc() }

// Webhook counts a delivery attempt by its result: delivered, failed or dead.
func (m *Metrics) Webhook(result string) { m.webhooks.WithLabelValues(result).Inc() }

// stateCollector reads the order counts from the database at scrape time, so
// the gauge can never drift from the truth.
type stateCollector struct {
	figures Figures
	status  func() (bool, bool)
}

var (
	ordersDesc  = prometheus.NewDesc("station_orders", "Orders by state.", []string{"state"}, nil)
	readerDesc  = prometheus.NewDesc("station_reader_up", "1 when the card reader is ready.", nil, nil)
	printerDesc = prometheus.NewDesc("station_printer_up", "1 when the printer is ready.", nil, nil)
	outboxDesc  = prometheus.NewDesc("station_webhook_outbox", "Webhook notices waiting (pending) or given up (dead).", []string{"status"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ordersDesc
	ch <- readerDesc
	ch <- printerDesc
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
	r, p := c.status()
	ch <- prometheus.MustNewConstMetric(readerDesc, prometheus.GaugeValue, b2f(r))
	ch <- prometheus.MustNewConstMetric(printerDesc, prometheus.GaugeValue, b2f(p))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
