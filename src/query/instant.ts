/**
 * RFC 3339 date-times as exact instants: nanoseconds since the Unix epoch,
 * as a bigint. `Date` keeps only milliseconds and Formance stores
 * microseconds, so comparing through `Date` would call distinct instants
 * equal. Pure: no clock, no locale.
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

const NANOS_PER_SECOND = 1_000_000_000n
const SECONDS_PER_DAY = 86_400n

export interface Instant {
  /** The text as written. */
  readonly text: string
  /** Nanoseconds since 1970-01-01T00:00:00Z. */
  readonly nanos: bigint
}

/** Parses an RFC 3339 date-time (`Z` or `±hh:mm`, up to 9 fraction digits). */
export function parseInstant(text: string): Instant | undefined {
  const match = RFC3339.exec(text)
  if (match === null) return undefined
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, zulu, sign, offsetHourText, offsetMinuteText] =
    match
  const year = Number(yearText)
  const month = Number(monthText)
  const day = Number(dayText)
  const hour = Number(hourText)
  const minute = Number(minuteText)
  const second = Number(secondText)
  if (month < 1 || month > 12) return undefined
  if (day < 1 || day > daysInMonth(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  let offsetSeconds = 0
  if (zulu === undefined) {
    const offsetHour = Number(offsetHourText)
    const offsetMinute = Number(offsetMinuteText)
    if (offsetHour > 23 || offsetMinute > 59) return undefined
    offsetSeconds = (sign === '-' ? -1 : 1) * (offsetHour * 3600 + offsetMinute * 60)
  }
  const days = BigInt(daysFromCivil(year, month, day))
  const seconds = days * SECONDS_PER_DAY + BigInt(hour * 3600 + minute * 60 + second - offsetSeconds)
  const fractionNanos = fraction === undefined ? 0n : BigInt(fraction.padEnd(9, '0'))
  return { text, nanos: seconds * NANOS_PER_SECOND + fractionNanos }
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const monthFromMarch = month > 2 ? month - 3 : month + 9
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}
