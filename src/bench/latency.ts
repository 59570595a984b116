import { invariant, InvariantViolation } from '../domain/index.ts'

/**
 * A log-bucketed latency histogram over integer microseconds, in the spirit of
 * HdrHistogram but small enough to read at once. Memory is bounded
 * (`bucketCount` counters) however long the run, and a histogram merges into
 * another by adding counters, so per-second, per-workload and total views
 * are cheap.
 *
 * Layout: values below `exactBelowMicros` (256 µs) have one bucket each, so
 * they are exact. Above, every power of two [2^e, 2^(e+1)) is split into
 * `subBucketCount` (128) equal buckets, so a bucket is at most 1/128 of its
 * lower bound wide. A percentile reports its bucket's upper bound (clamped to
 * the exact maximum): never below the true value, and above it by at most
 * `relativeErrorMax` of it. Count, minimum, maximum and sum are exact.
 */
const subBucketBits = 7
export const subBucketCount = 1 << subBucketBits // 128
export const exactBelowMicros = subBucketCount * 2 // 256
export const valueMicrosMax = 0xffff_ffff // ~71 minutes; larger values are clamped into the last bucket
export const relativeErrorMax = 1 / subBucketCount
const bucketCount = exactBelowMicros + (32 - subBucketBits - 1) * subBucketCount // 3328

export function bucketIndexOf(valueMicros: number): number {
  invariant(Number.isInteger(valueMicros), 'latency must be an integer number of microseconds')
  invariant(valueMicros >= 0, 'latency must not be negative')
  const value = Math.min(valueMicros, valueMicrosMax)
  if (value < exactBelowMicros) return value
  const exponent = 31 - Math.clz32(value)
  const shift = exponent - subBucketBits
  const sub = Math.floor(value / 2 ** shift) // in [128, 256)
  const index = exactBelowMicros + (shift - 1) * subBucketCount + (sub - subBucketCount)
  invariant(index >= exactBelowMicros, 'bucket index below the log range')
  invariant(index < bucketCount, 'bucket index beyond the histogram')
  return index
}

/** The largest value that falls into bucket `index`. */
export function bucketHighMicros(index: number): number {
  invariant(index >= 0 && index < bucketCount, `bucket index ${index} out of range`)
  if (index < exactBelowMicros) return index
  const offset = index - exactBelowMicros
  const shift = Math.floor(offset / subBucketCount) + 1
  const sub = (offset % subBucketCount) + subBucketCount
  return (sub + 1) * 2 ** shift - 1
}

/**
 * Nearest-rank percentile: the 1-based rank of the sample that answers `p`
 * (0 < p ≤ 100) among `count` samples. Shared with the brute-force test.
 */
export function nearestRank(percentile: number, count: number): number {
  invariant(percentile >= 0 && percentile <= 100, `percentile ${percentile} out of [0, 100]`)
  invariant(count > 0, 'nearestRank needs at least one sample')
  // The epsilon absorbs float noise such as 0.99 * 100 = 99.00000000000001.
  const rank = Math.ceil((percentile * count) / 100 - 1e-9)
  return Math.min(count, Math.max(1, rank))
}

export interface LatencySummaryMs {
  readonly count: number
  readonly minMs: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly p999Ms: number
  readonly maxMs: number
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(bucketCount)
  private countTotal = 0
  private sumMicros = 0
  private minMicrosValue = Number.POSITIVE_INFINITY
  private maxMicrosValue = 0

  get count(): number {
    return this.countTotal
  }

  get minMicros(): number {
    return this.countTotal === 0 ? 0 : this.minMicrosValue
  }

  get maxMicros(): number {
    return this.maxMicrosValue
  }

  record(latencyMicros: number): void {
    this.counts[bucketIndexOf(latencyMicros)]! += 1
    this.countTotal += 1
    this.sumMicros += latencyMicros
    if (latencyMicros < this.minMicrosValue) this.minMicrosValue = latencyMicros
    if (latencyMicros > this.maxMicrosValue) this.maxMicrosValue = latencyMicros
  }

  /** Records a latency measured in (fractional) milliseconds, rounded to the microsecond. */
  recordMs(latencyMs: number): void {
    invariant(Number.isFinite(latencyMs), 'latency must be finite')
    this.record(Math.max(0, Math.round(latencyMs * 1000)))
  }

  merge(other: LatencyHistogram): void {
    if (other.countTotal === 0) return
    for (let index = 0; index < bucketCount; index++) this.counts[index]! += other.counts[index]!
    this.countTotal += other.countTotal
    this.sumMicros += other.sumMicros
    this.minMicrosValue = Math.min(this.minMicrosValue, other.minMicrosValue)
    this.maxMicrosValue = Math.max(this.maxMicrosValue, other.maxMicrosValue)
  }

  /** Nearest-rank percentile in µs; 0 when empty. Within `relativeErrorMax` above the exact value. */
  percentileMicros(percentile: number): number {
    if (this.countTotal === 0) return 0
    const rank = nearestRank(percentile, this.countTotal)
    let seen = 0
    for (let index = 0; index < bucketCount; index++) {
      seen += this.counts[index]!
      if (seen >= rank) return Math.max(this.minMicrosValue, Math.min(bucketHighMicros(index), this.maxMicrosValue))
    }
    throw new InvariantViolation('histogram bucket counts do not add up to its total')
  }

  summaryMs(): LatencySummaryMs {
    const toMs = (micros: number): number => micros / 1000
    return {
      count: this.countTotal,
      minMs: toMs(this.minMicros),
      meanMs: this.countTotal === 0 ? 0 : toMs(this.sumMicros / this.countTotal),
      p50Ms: toMs(this.percentileMicros(50)),
      p90Ms: toMs(this.percentileMicros(90)),
      p99Ms: toMs(this.percentileMicros(99)),
      p999Ms: toMs(this.percentileMicros(99.9)),
      maxMs: toMs(this.maxMicros),
    }
  }
}
