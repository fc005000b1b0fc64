// calyptiapeer: an output plugin written with Calyptia's Go SDK (github.com/calyptia/plugin), as
// its authors write them: registered in init, configured in Init through fbit.Conf (a camelCase
// key read as snake_case), logging through fbit.Logger and counting through fbit.Metrics, and a
// Flush goroutine that takes the records from the channel until it is closed, sending each as
// a JSON line over TCP (net.Dial, Go's own) to `address`. It logs `calyptiapeer drained N
// records` when the channel closes at exit.
package main

import (
	"context"
	"encoding/json"
	"net"

	"github.com/calyptia/plugin"
	"github.com/calyptia/plugin/metric"
)

func init() {
	plugin.RegisterOutput("calyptiapeer", "records as JSON lines over TCP", &peer{})
}

type peer struct {
	address string
	prefix  string
	log     plugin.Logger
	records metric.Counter
	batch   metric.Gauge
}

func (p *peer) Init(ctx context.Context, fbit *plugin.Fluentbit) error {
	p.address = fbit.Conf.String("address")
	p.prefix = fbit.Conf.String("linePrefix")
	p.log = fbit.Logger
	p.records = fbit.Metrics.NewCounter("calyptiapeer_records_total", "records sent", "tag")
	p.batch = fbit.Metrics.NewGauge("calyptiapeer_sent", "records sent since start", "tag")
	p.log.Info("calyptiapeer init address=%s prefix=%q", p.address, p.prefix)
	p.log.Debug("calyptiapeer debug line")
	if p.prefix == "" {
		p.log.Warn("calyptiapeer has no line_prefix")
	}
	return nil
}

func (p *peer) Flush(ctx context.Context, ch <-chan plugin.Message) error {
	conn, err := net.Dial("tcp", p.address)
	if err != nil {
		p.log.Error("calyptiapeer cannot connect: %v", err)
		return err
	}
	defer conn.Close()
	sent := 0
	for msg := range ch {
		line, err := json.Marshal(map[string]any{
			"tag": msg.Tag(), "time": msg.Time.UnixNano(), "record": msg.Record,
		})
		if err != nil {
			p.log.Error("calyptiapeer: %v", err)
			continue
		}
		if _, err := conn.Write(append([]byte(p.prefix), append(line, '\n')...)); err != nil {
			p.log.Error("calyptiapeer write: %v", err)
			return err
		}
		sent++
		p.records.Add(1, msg.Tag())
		p.batch.Set(float64(sent), msg.Tag())
	}
	p.log.Info("calyptiapeer drained %d records", sent)
	return nil
}

func main() {}
