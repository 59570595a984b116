/** `tally bench`: an HTTP load generator for the Formance Ledger v2 API. */
export { runBench, systemClock, validateRunOptions, concurrencyMax, ratePerSecondMax } from './runner.ts'
export type { Clock, WorkloadPlan, StopCondition, RunOptions, RunResult, WorkloadResult, Tally, ProgressSnapshot } from './runner.ts'
export { WorkloadRegistry } from './workload.ts'
export type {
  WorkloadDefinition,
  WorkloadSettings,
  WorkloadSetupContext,
  BenchRequest,
  RequestOutcome,
  RequestGenerator,
} from './workload.ts'
export {
  createDefaultRegistry,
  transactionsWorkload,
  bulkWorkload,
  nextTransactionData,
  drawTransaction,
  transactionDataOf,
  encodeTransaction,
  countBulk,
  createBulkCounter,
 
  bulkResponseSampleEvery,
  userAccount,
  ledgerPath,
  benchAsset,
  amountMax,
  classifySingle,
  classifyBulk,
  failureKeyOf,
  parseResponseBody,
  isSuccessStatus,
} from './workloads/index.ts'
export type { BenchPosting, BenchTransactionData, TransactionDraw } from './workloads/index.ts'
export { LatencyHistogram, nearestRank, relativeErrorMax, bucketIndexOf, bucketHighMicros } from './latency.ts'
export type { LatencySummaryMs } from './latency.ts'
export { Random, deriveSeed } from './random.ts'
export { createHttpTransport, NetworkError } from './http.ts'
export type { HttpTransport, HttpRequest, HttpResponse, HttpTransportOptions } from './http.ts'
export { ensureLedger, TargetUnreachableError, LedgerSetupError } from './ledger.ts'
export { buildReport, formatSummary, formatProgress } from './report.ts'
export type { BenchReport, BenchEnvironment } from './report.ts'
export { startCpuMeter, readServerCpu, readProcessFamilyCpu, parseProcStatParentPid, readClientCpu, parseProcStatCpuMicros, costOf, procTicksPerSecond } from './cpu.ts'
export type { RunCpu, RunWork, CpuCost, CpuTimes, ServerCpuTimes } from './cpu.ts'
export { fillLedger, FillError, fillConcurrencyDefault, fillTransactionsMax } from './fill.ts'
export type { FillOptions, FillResult } from './fill.ts'
export { formatCpu } from './report.ts'
export { createLeanHttpTransport, parseResponseHead, decodeChunked, responseHeadBytesMax, responseBodyBytesMax } from './lean-http.ts'
export type { ResponseHead } from './lean-http.ts'
