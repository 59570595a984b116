/** Levels a node's message may carry; info when absent. */
export type NodeLogLevel = 'info' | 'warn' | 'error'

/** Figures attached to a log line (a duration, an index): never amounts, metadata or secrets. */
export interface NodeLogFields {
  readonly level?: NodeLogLevel
  readonly [field: string]: string | number | undefined
}

/** How a node reports what it does; the server turns it into structured log lines. */
export type NodeLog = (message: string, fields?: NodeLogFields) => void
