import type { CpuCost, RunCpu } from './cpu.ts'
import type { FillResult } from './fill.ts'
import type { LatencySummaryMs } from './latency.ts'
import type { ProgressSnapshot, RunResult, StopCondition, Tally, WorkloadResult } from './runner.ts'
import type { WorkloadSettings } from './workload.ts'

/** The machine-readable result (`--json`), also what `docs/bench.md` asks to keep in `bench/results/`. */
export interface BenchReport {
  readonly tool: 'tally bench'
  /** 2 added `cpu`; 3 added CPU per operation (`microsPerOperation`) and `fill`. */
  readonly reportVersion: 3
  readonly startedAt: string
  readonly target: string
  readonly seed: number
  readonly stop: StopCondition
  readonly settings: WorkloadSettings
  readonly environment: BenchEnvironment
  readonly maxErrorRate: number
  /** False when the total error rate exceeded `maxErrorRate`. */
  readonly passed: boolean
  readonly elapsedMs: number
  readonly workloads: WorkloadResult[]
  readonly total: Tally
  /** CPU the load generator and (given its pid) the server spent over the run. */
  readonly cpu: RunCpu | null
  /** The `--fill` load that preceded the run (not measured), null without one. */
  readonly fill: FillResult | null
}

export interface BenchEnvironment {
  readonly node: string
  readonly platform: string
  readonly arch: string
  readonly cpus: number
  readonly cpuModel: string
}

export function buildReport(input: {
  startedAt: Date
  target: string
  seed: number
  stop: StopCondition
  settings: WorkloadSettings
  environment: BenchEnvironment
  maxErrorRate: number
  result: RunResult
  cpu?: RunCpu
  fill?: FillResult | null
}): BenchReport {
  return {
    tool: 'tally bench',
    reportVersion: 3,
    startedAt: input.startedAt.toISOString(),
    target: input.target,
    seed: input.seed,
    stop: input.stop,
    settings: input.settings,
    environment: input.environment,
    maxErrorRate: input.maxErrorRate,
    passed: input.result.total.errorRate <= input.maxErrorRate,
    elapsedMs: input.result.elapsedMs,
    workloads: input.result.workloads,
    total: input.result.total,
    cpu: input.cpu ?? null,
    fill: input.fill ?? null,
  }
}

const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function integer(value: number): string {
  return integerFormat.format(value)
}

function rate(value: number): string {
  return value >= 100 ? integer(value) : value.toFixed(1)
}

export function milliseconds(value: number): string {
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

export function formatProgress(snapshot: ProgressSnapshot): string {
  const seconds = snapshot.intervalMs / 1000
  const perSecond = (count: number): string => rate(seconds > 0 ? count / seconds : 0)
  const latency = snapshot.intervalLatency
  return [
    `[${(snapshot.elapsedMs / 1000).toFixed(1).padStart(6)}s]`,
    `${integer(snapshot.requests)} req (${perSecond(snapshot.intervalRequests)}/s)`,
    `${integer(snapshot.transactions)} tx (${perSecond(snapshot.intervalTransactions)}/s)`,
    `${integer(snapshot.operationsFailed)} failed`,
    latency.count === 0 ? 'no answers this second' : `p50 ${milliseconds(latency.p50Ms)} ms p99 ${milliseconds(latency.p99Ms)} ms`,
  ].join('  ')
}

interface Row {
  readonly label: string
  readonly mode: string
  readonly tally: Tally
}

const columns = ['workload', 'mode', 'requests', 'tx', 'failed', 'req/s', 'tx/s', 'p50', 'p90', 'p99', 'max'] as const

function cells(row: Row): string[] {
  const latency: LatencySummaryMs = row.tally.latency
  return [
    row.label,
    row.mode,
    integer(row.tally.requests),
    integer(row.tally.transactions),
    integer(row.tally.operationsFailed),
    rate(row.tally.requestsPerSecond),
    rate(row.tally.transactionsPerSecond),
    milliseconds(latency.p50Ms),
    milliseconds(latency.p90Ms),
    milliseconds(latency.p99Ms),
    milliseconds(latency.maxMs),
  ]
}

/** Open-loop send delays below this are event-loop noise, not saturation. */
const startLagReportMs = 10

function modeOf(workload: WorkloadResult): string {
  return workload.ratePerSecond === null
    ? `closed ×${workload.concurrency}`
    : `open ${rate(workload.ratePerSecond)}/s ≤${workload.concurrency}`
}

/** The human summary: one row per workload, a total row when there are several, then failures by cause. */
export function formatSummary(report: BenchReport): string {
  const rows: Row[] = report.workloads.map((workload) => ({ label: workload.name, mode: modeOf(workload), tally: workload }))
  if (report.workloads.length > 1) rows.push({ label: 'total', mode: '', tally: report.total })
  const table = [[...columns], ...rows.map(cells)]
  const widths = columns.map((_, column) => Math.max(...table.map((line) => line[column]!.length)))
  const render = (line: string[]): string =>
    line.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd()

  const lines = [
    `tally bench: ${report.target} ledger ${report.settings.ledger}, seed ${report.seed}, ${describeStop(report.stop)}, ` +
      `${integer(report.settings.accounts)} accounts, bulk size ${report.settings.bulkSize}, force ratio ${report.settings.forceRatio}` +
      (report.fill === null ? '' : `, after a fill of ${integer(report.fill.transactions)} transactions`),
    render(table[0]!) + '   (latency in ms)',
    ...table.slice(1).map(render),
  ]
  for (const workload of report.workloads) {
    if (workload.startLagMsMax !== null && workload.startLagMsMax >= startLagReportMs) {
      lines.push(`${workload.name}: requests started up to ${milliseconds(workload.startLagMsMax)} ms late (concurrency cap reached or client saturated)`)
    }
  }
  const failureLines = report.workloads.flatMap((workload) =>
    Object.entries(workload.failures).map(([key, count]) => `  ${workload.name}: ${key} × ${integer(count)}`),
  )
  if (failureLines.length > 0) lines.push('failures (operations):', ...failureLines)
  if (report.cpu !== null) lines.push(...formatCpu(report.cpu, report.total))
  const errorPercent = (report.total.errorRate * 100).toFixed(3)
  lines.push(
    report.passed
      ? `error rate ${errorPercent}% (limit ${report.maxErrorRate * 100}%): ok`
      : `error rate ${errorPercent}% exceeds the limit of ${report.maxErrorRate * 100}%: FAILED`,
  )
  return lines.join('\n') + '\n'
}

function describeStop(stop: StopCondition): string {
  return stop.kind === 'duration' ? `${stop.durationMs / 1000} s` : `${integer(stop.requests)} requests per workload`
}

function micros(value: number | null): string {
  return value === null ? '–' : value >= 100 ? value.toFixed(0) : value.toFixed(1)
}

/**
 * `CPU per transaction: client 3.1 µs, server 120 µs (JS thread 95 µs)`,
 * and, when the run also read (or failed operations), the same per
 * operation: a read-only run has no transaction to divide by.
 */
export function formatCpu(cpu: RunCpu, work: { readonly transactions: number; readonly operations: number }): string[] {
  const line = (unit: string, pick: (cost: CpuCost) => number | null, pickMain: (server: NonNullable<RunCpu['server']>) => number | null): string => {
    const server = cpu.server === null ? 'server not measured (--server-pid)' : `server ${micros(pick(cpu.server))} µs (JS thread ${micros(pickMain(cpu.server))} µs)`
    return `CPU per ${unit}: client ${micros(pick(cpu.client))} µs, ${server}`
  }
  const lines: string[] = []
  if (work.transactions > 0 || work.operations === 0) {
    lines.push(line('transaction', (cost) => cost.microsPerTransaction, (server) => server.mainThreadMicrosPerTransaction))
  }
  if (work.operations !== work.transactions) {
    lines.push(line('operation (a transaction or a read)', (cost) => cost.microsPerOperation, (server) => server.mainThreadMicrosPerOperation))
  }
  return lines
}
