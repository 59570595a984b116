/**
 * A Prometheus histogram that counts an observation with a few additions:
 * the pipeline observes several per proposal and the HTTP layer one per
 * request, where prom-client's `Histogram.observe` builds and hashes a label
 * object and searches a bucket map on every call (about 1–3 µs each warm,
 * several times that on the cold path of a lone request). A series (one set
 * of label values) is looked up once and kept; `get()` gives the registry
 * what prom-client's histogram gives it, so the exposition text is the same
 * (`test/api/histogram.test.ts` compares them).
 */

/** One set of label values: cumulative at scrape time, per-bucket counts meanwhile. */
export class HistogramSeries {
  /** counts[i]: observations in (bounds[i−1], bounds[i]]; the last slot counts those above every bound. */
  private readonly counts: Float64Array
  private sum = 0
  private count = 0

  constructor(
    private readonly bounds: Float64Array,
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`)
    const bounds = this.bounds
    let at = 0
    while (at < bounds.length && value > (bounds[at] as number)) at++
    this.counts[at] = (this.counts[at] as number) + 1
    this.sum += value
    this.count++
  }

  /** The series' lines as prom-client's registry prints them: buckets (cumulative), +Inf, sum, count. */
  exportInto(name: string, values: HistogramValue[]): void {
    const bucket = `${name}_bucket`
    let cumulative = 0
    for (let at = 0; at < this.bounds.length; at++) {
      cumulative += this.counts[at] as number
      values.push({ labels: { le: this.bounds[at] as number }, sharedLabels: this.labels, value: cumulative, metricName: bucket })
    }
    values.push({ labels: { le: '+Inf' }, sharedLabels: this.labels, value: this.count, metricName: bucket })
    values.push({ labels: {}, sharedLabels: this.labels, value: this.sum, metricName: `${name}_sum` })
    values.push({ labels: {}, sharedLabels: this.labels, value: this.count, metricName: `${name}_count` })
  }
}

export interface HistogramValue {
  readonly labels: Readonly<Record<string, string | number>>
  readonly sharedLabels: Readonly<Record<string, string>>
  readonly value: number
  readonly metricName: string
}

/**
 * Registered with a prom-client `Registry` (`registerMetric`): the registry
 * only calls `get()` at scrape time. Series are created on first use, in the
 * order of first use, as prom-client's are; label values must come from
 * bounded sets (the caller's duty, as with prom-client).
 */
export class CountingHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly bounds: Float64Array
  private readonly series = new Map<string, HistogramSeries>()
  private unlabelled: HistogramSeries | undefined

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    private readonly labelNames: readonly string[] = [],
  ) {
    const sorted = [...buckets].sort((a, b) => a - b)
    this.bounds = Float64Array.from(sorted)
    // As prom-client: a histogram without labels prints its (zero) series before any observation.
    if (labelNames.length === 0) this.unlabelled = this.seriesFor('', () => [])
  }

  /** An observation with no labels (a histogram declared without label names). */
  observe(value: number): void {
    this.unlabelled ??= this.seriesFor('', () => [])
    this.unlabelled.observe(value)
  }

  /**
   * The series kept under `key`, a string the caller derives one-to-one from
   * its label values; `labelValues` (in `labelNames` order) is called only
   * to create it.
   */
  seriesFor(key: string, labelValues: () => readonly string[]): HistogramSeries {
    let series = this.series.get(key)
    if (series === undefined) {
      const values = labelValues()
      if (values.length !== this.labelNames.length) throw new TypeError(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`)
      const labels: Record<string, string> = Object.create(null) as Record<string, string>
      this.labelNames.forEach((label, at) => (labels[label] = values[at] as string))
      series = new HistogramSeries(this.bounds, labels)
      this.series.set(key, series)
    }
    return series
  }

  get(): { name: string; help: string; type: string; values: HistogramValue[]; aggregator: string } {
    const values: HistogramValue[] = []
    for (const series of this.series.values()) series.exportInto(this.name, values)
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /** Forgets every observation (prom-client's `reset`). */
  reset(): void {
    this.series.clear()
    this.unlabelled = this.labelNames.length === 0 ? this.seriesFor('', () => []) : undefined
  }
}
