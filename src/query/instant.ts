/**
 * Filters compare dates as exact instants (nanoseconds as a bigint): the
 * parser is the domain's, the one every date entering Tally goes through.
 */
export type { Instant } from '../domain/dates.ts'
export { parseInstant, readInstant } from '../domain/dates.ts'
