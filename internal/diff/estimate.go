package diff

import (
	"context"

	"github.com/baasmigrate/baasmigrate/extractors"
)

// EstimateReads projects what migrate would read from ex, and what that
// would cost at pricePer100k per 100,000 billable reads, from cheap
// aggregation counts: it plans ex into at most partitions partitions per
// stream, as migrate does, and counts each stream. It returns nil when ex
// cannot count (extractors.Counter).
//
// The reads are one per record (or what an extractors.ReadEstimator
// says a stream takes) plus what planning and counting just cost,
// as ex meters them (extractors.ReadMeter): migrate plans again, and a
// source that bills listings and aggregations bills them again. Streams are
// counted at ex's snapshot time when it has one (extractors.Snapshotter),
// so that the counts are of one consistent state.
func EstimateReads(ctx context.Context, ex extractors.Extractor, partitions int, pricePer100k float64) (*Estimate, error) {
	counter, ok := ex.(extractors.Counter)
	if !ok {
		return nil, nil
	}
	meter, metered := ex.(extractors.ReadMeter)
	var before int64
	if metered {
		before = meter.BillableReads()
	}
	_, streams, err := extractors.PlanSnapshot(ctx, ex, partitions)
	if err != nil {
		return nil, err
	}
	e := &Estimate{PricePer100k: pricePer100k}
	re, perStream := ex.(extractors.ReadEstimator)
	for _, st := range streams {
		n, err := counter.Count(ctx, st)
		if err != nil {
			return nil, err
		}
		e.Records += n
		reads := n
		if perStream {
			if reads, err = re.EstimateReads(ctx, st, n); err != nil {
				return nil, err
			}
		}
		e.Reads += reads
	}
	if metered {
		e.Reads += meter.BillableReads() - before
	}
	e.Cost = ReadCost(e.Reads, pricePer100k)
	return e, nil
}

// ReadCost is the price of reads billable reads at pricePer100k per
// 100,000 reads.
func ReadCost(reads int64, pricePer100k float64) float64 {
	return float64(reads) * pricePer100k / 100000
}
