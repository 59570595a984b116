import { InvariantViolation, invariant, validationError } from './errors.ts'
import { describe } from './names.ts'

/**
 * RFC 3339 date-times as exact instants, and the one canonical text every
 * date is stored, hashed and compared in.
 *
 * An instant is nanoseconds since the Unix epoch as a bigint: `Date` keeps
 * only milliseconds and rolls impossible dates over (`2021-02-29` becomes
 * March 1st), so it is used nowhere here. Pure: no clock, no locale.
 *
 * Precision is v2's: Formance v2 keeps microseconds (Go's `time.Time`
 * rounded with `Round(time.Microsecond)` before PostgreSQL's `timestamp`), so
 * a date with more fraction digits is rounded half up to the microsecond,
 * as v2 does, rather than refused: Go clients print nanoseconds by default.
 */
export interface Instant {
  /** The text as written. */
  readonly text: string
  /** Nanoseconds since 1970-01-01T00:00:00Z. */
  readonly nanos: bigint
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

const NANOS_PER_SECOND = 1_000_000_000n
const NANOS_PER_MICROSECOND = 1_000n
const SECONDS_PER_DAY = 86_400
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

/** Years a stored date may fall in: four digits, so that canonical texts stay fixed-width. */
export const DATE_YEAR_MIN = 0
export const DATE_YEAR_MAX = 9999

/** Why a text names no instant: not RFC 3339 at all, or a field out of range (`2021-02-29`). */
export interface DateError {
  readonly error: string
  readonly shape: boolean
}

/** An instant, or why the text names none. */
export function readInstant(text: string): Instant | DateError {
  const match = RFC3339.exec(text)
  if (match === null) return { error: 'not an RFC 3339 date-time such as "2024-01-31T12:00:00Z"', shape: true }
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, zulu, sign, offsetHourText, offsetMinuteText] = match
  const year = Number(yearText)
  const month = Number(monthText)
  const day = Number(dayText)
  const hour = Number(hourText)
  const minute = Number(minuteText)
  const second = Number(secondText)
  if (month < 1 || month > 12) return { error: `month ${monthText} does not exist`, shape: false }
  const days = daysInMonth(year, month)
  if (day < 1 || day > days) return { error: `${MONTH_NAMES[month - 1]} ${yearText} has ${days} days, not ${dayText}`, shape: false }
  if (hour > 23) return { error: `hour ${hourText} does not exist (00 to 23)`, shape: false }
  if (minute > 59) return { error: `minute ${minuteText} does not exist (00 to 59)`, shape: false }
  if (second > 59) return { error: `second ${secondText} does not exist (00 to 59)`, shape: false }
  let offsetSeconds = 0
  if (zulu === undefined) {
    const offsetHour = Number(offsetHourText)
    const offsetMinute = Number(offsetMinuteText)
    if (offsetHour > 23 || offsetMinute > 59) return { error: `offset ${sign}${offsetHourText}:${offsetMinuteText} does not exist (up to ±23:59)`, shape: false }
    offsetSeconds = (sign === '-' ? -1 : 1) * (offsetHour * 3600 + offsetMinute * 60)
  }
  const seconds = daysFromCivil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offsetSeconds
  const fractionNanos = fraction === undefined ? 0n : BigInt(fraction.padEnd(9, '0'))
  return { text, nanos: BigInt(seconds) * NANOS_PER_SECOND + fractionNanos }
}

/** `YYYY-MM-DDTHH:MM:SS.ffffff` by character code; 0 where a digit goes. */
const FIXED_WIDTH_SHAPE = Array.from('0000-00-00T00:00:00.000000', (character) => (character === '0' ? 0 : character.charCodeAt(0)))
const CODE_ZERO = 0x30
const CODE_NINE = 0x39
const CODE_Z = 0x5a

/**
 * Whether `text` is a date in fixed width, `YYYY-MM-DDTHH:MM:SS.fffZ` or
 * `….ffffffZ`, naming a real instant (no `2021-02-29`, no hour 24). Every
 * canonical text is one (and the millisecond-exact ones spelled with six
 * digits too), so the hot path's dates — stored ones, `toISOString`'s, and
 * clients echoing Tally's own — are read here by character, with no regular
 * expression and no bigint, and only other spellings take `readInstant`.
 */
export function isFixedWidthDate(text: string): boolean {
  const length = text.length
  if ((length !== 24 && length !== 27) || text.charCodeAt(length - 1) !== CODE_Z) return false
  for (let index = 0; index < length - 1; index++) {
    const code = text.charCodeAt(index)
    const separator = FIXED_WIDTH_SHAPE[index] as number
    if (separator === 0 ? code < CODE_ZERO || code > CODE_NINE : code !== separator) return false
  }
  const year = digitsAt(text, 0, 4)
  const month = digitsAt(text, 5, 2)
  const day = digitsAt(text, 8, 2)
  return (
    month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month) && digitsAt(text, 11, 2) <= 23 && digitsAt(text, 14, 2) <= 59 && digitsAt(text, 17, 2) <= 59
  )
}

/** The number written by `count` ASCII digits from `start` (already checked to be digits). */
function digitsAt(text: string, start: number, count: number): number {
  let value = 0
  for (let index = start; index < start + count; index++) value = value * 10 + (text.charCodeAt(index) - CODE_ZERO)
  return value
}

/**
 * Orders two fixed-width dates: the same fields at the same offsets, UTC
 * both, so character order is instant order once the millisecond form's
 * missing microsecond digits are read as zeros.
 */
function compareFixedWidth(left: string, right: string): number {
  const leftMicros = left.length === 27
  const rightMicros = right.length === 27
  for (let index = 0; index < 26; index++) {
    const a = index < 23 || leftMicros ? left.charCodeAt(index) : CODE_ZERO
    const b = index < 23 || rightMicros ? right.charCodeAt(index) : CODE_ZERO
    if (a !== b) return a < b ? -1 : 1
  }
  return 0
}

/** Parses an RFC 3339 date-time (`Z` or `±hh:mm`, up to 9 fraction digits), exactly. */
export function parseInstant(text: string): Instant | undefined {
  const read = readInstant(text)
  return 'error' in read ? undefined : read
}

/** Rounds half up to v2's precision, the microsecond. */
export function toMicroseconds(nanos: bigint): bigint {
  return floorDivide(nanos + NANOS_PER_MICROSECOND / 2n, NANOS_PER_MICROSECOND) * NANOS_PER_MICROSECOND
}

/**
 * The canonical text of an instant: UTC, `Z`, milliseconds when the instant
 * falls on one (what `toISOString` prints, so every date Tally stamps itself
 * is already canonical), else microseconds. Undefined outside years
 * 0000–9999 or below the microsecond: such an instant has no canonical text.
 */
export function canonicalDate(nanos: bigint): string | undefined {
  if (nanos % NANOS_PER_MICROSECOND !== 0n) return undefined
  const seconds = floorDivide(nanos, NANOS_PER_SECOND)
  const fractionNanos = nanos - seconds * NANOS_PER_SECOND
  const days = Number(floorDivide(seconds, BigInt(SECONDS_PER_DAY)))
  const secondOfDay = Number(seconds) - days * SECONDS_PER_DAY
  const { year, month, day } = civilFromDays(days)
  if (year < DATE_YEAR_MIN || year > DATE_YEAR_MAX) return undefined
  const digits = String(fractionNanos).padStart(9, '0')
  const fraction = digits.endsWith('000000') ? digits.slice(0, 3) : digits.slice(0, 6)
  const hour = Math.floor(secondOfDay / 3600)
  const minute = Math.floor((secondOfDay % 3600) / 60)
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(secondOfDay % 60, 2)}.${fraction}Z`
}

/**
 * A date a request gives (a transaction's `timestamp`, `pit`, `startTime`,
 * …): RFC 3339 naming a real instant, rounded to the microsecond, in
 * canonical text. Anything else is a 400 saying what is wrong.
 */
export function parseDate(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw validationError(`${field}: expected an RFC 3339 date-time, got ${describe(value)}`)
  // Already canonical (a millisecond, or microseconds not on one): it is its own canonical text.
  if (isFixedWidthDate(value) && (value.length === 24 || !value.endsWith('000Z'))) return value
  const read = readInstant(value)
  if ('error' in read) throw validationError(`${field}: ${describe(value)} is not a date: ${read.error}`)
  const text = canonicalDate(toMicroseconds(read.nanos))
  if (text === undefined) throw validationError(`${field}: ${describe(value)} is outside years 0000–9999 (in UTC)`)
  // Fixed width per precision, so that byte order is instant order within each (and layout.ts pads across them).
  invariant(text.length === 24 || text.length === 27, () => `canonical date ${text} is not fixed-width`)
  invariant(parseInstant(text)?.nanos === toMicroseconds(read.nanos), () => `canonical date ${text} names another instant than ${value}`)
  return text
}

/** Orders two stored dates as the instants they name, whatever their precision. */
export function compareDates(left: string, right: string): number {
  if (left === right) return 0
  if (knownFixedWidth(left) && knownFixedWidth(right)) return compareFixedWidth(left, right)
  const a = parseInstant(left)
  const b = parseInstant(right)
  if (a === undefined || b === undefined) throw new InvariantViolation(`stored date ${JSON.stringify(a === undefined ? left : right)} is not RFC 3339`)
  return a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0
}

/**
 * `isFixedWidthDate`, remembering the last texts it accepted: a bulk compares
 * its one date with the first use of the same few accounts (`world`), order
 * after order. A pure function of the text, so remembering changes no answer.
 */
function knownFixedWidth(text: string): boolean {
  for (let i = 0; i < FIXED_WIDTH_SEEN_MAX; i++) if (fixedWidthSeen[i] === text) return true
  if (!isFixedWidthDate(text)) return false
  fixedWidthSeen[fixedWidthSeenNext] = text
  fixedWidthSeenNext = (fixedWidthSeenNext + 1) % FIXED_WIDTH_SEEN_MAX
  return true
}

/** How many accepted texts `knownFixedWidth` remembers (replaced in turn). */
const FIXED_WIDTH_SEEN_MAX = 4
/** Texts `isFixedWidthDate` accepted ('' for none yet: never a date). */
const fixedWidthSeen: string[] = new Array<string>(FIXED_WIDTH_SEEN_MAX).fill('')
let fixedWidthSeenNext = 0

function floorDivide(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator
  return numerator % denominator !== 0n && numerator < 0n !== denominator < 0n ? quotient - 1n : quotient
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0')
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const monthFromMarch = month > 2 ? month - 3 : month + 9
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

/** The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`). */
function civilFromDays(days: number): { year: number; month: number; day: number } {
  const shifted = days + 719_468
  const era = Math.floor(shifted / 146_097)
  const dayOfEra = shifted - era * 146_097
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365)
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day }
}

/**
 * A stored date in one of its two canonical texts — `YYYY-MM-DDTHH:MM:SS.mmmZ`
 * (every date Tally stamps, `toISOString`'s form) or `…SS.uuuuuuZ` (an
 * imported date not on a millisecond) — from 1970 on, as one number for the
 * packed encoding's instant item (`domain/packed.ts`): the milliseconds since
 * the epoch × 2, or the microseconds × 2 + 1; -1 for any other string, also a
 * date of another form (a number decodes to one text only, so a text that is
 * not the canonical one of its instant stays a string). At most 2^53, exact in
 * a double: later microsecond dates (after 2112) stay strings too.
 */
export function instantCode(text: string): number {
  // The dates of one transaction, and of a bulk's transactions, are mostly one instant: the last one is kept.
  if (text === lastInstant.text) return lastInstant.code
  if (!isFixedWidthDate(text)) return -1
  const year = digitsAt(text, 0, 4)
  if (year < 1970) return -1
  const length = text.length
  const seconds = daysFromCivil(year, digitsAt(text, 5, 2), digitsAt(text, 8, 2)) * SECONDS_PER_DAY + digitsAt(text, 11, 2) * 3600 + digitsAt(text, 14, 2) * 60 + digitsAt(text, 17, 2)
  const fraction = digitsAt(text, 20, length - 21)
  const code = length === 24 ? (seconds * 1000 + fraction) * 2 : (seconds * 1_000_000 + fraction) * 2 + 1
  if (code < 0 || code > 2 ** 53) return -1
  lastInstant.text = text
  lastInstant.code = code
  return code
}

/** The text `instantCode` read `code` from. */
export function instantCodeText(code: number): string {
  if (code === lastInstant.code) return lastInstant.text
  invariant(Number.isSafeInteger(code) && code >= 0, () => `instant code ${code} out of range`)
  const micro = code % 2 === 1
  const unit = micro ? 1_000_000 : 1000
  const count = (code - (micro ? 1 : 0)) / 2
  const fraction = count % unit
  const seconds = (count - fraction) / unit
  const days = Math.floor(seconds / SECONDS_PER_DAY)
  const secondOfDay = seconds - days * SECONDS_PER_DAY
  const { year, month, day } = civilFromDays(days)
  invariant(year <= DATE_YEAR_MAX, () => `instant code ${code} is past year ${DATE_YEAR_MAX}`)
  // Digits into a fixed template of character codes, one string made at the end.
  const units = micro ? MICRO_TEMPLATE : MILLI_TEMPLATE
  putDigits(units, 0, 4, year)
  putDigits(units, 5, 2, month)
  putDigits(units, 8, 2, day)
  putDigits(units, 11, 2, Math.floor(secondOfDay / 3600))
  putDigits(units, 14, 2, Math.floor((secondOfDay % 3600) / 60))
  putDigits(units, 17, 2, secondOfDay % 60)
  putDigits(units, 20, micro ? 6 : 3, fraction)
  const text = String.fromCharCode.apply(null, units as unknown as number[])
  lastInstant.text = text
  lastInstant.code = code
  return text
}

/** The last date `instantCode` or `instantCodeText` converted (one entry: they are pure, so it changes no result). */
const lastInstant = { text: '1970-01-01T00:00:00.000Z', code: 0 }

const MILLI_TEMPLATE = Uint16Array.from('0000-00-00T00:00:00.000Z', (character) => character.charCodeAt(0))
const MICRO_TEMPLATE = Uint16Array.from('0000-00-00T00:00:00.000000Z', (character) => character.charCodeAt(0))

/** Writes `value` as `count` decimal digits (zero-padded) at `at`. */
function putDigits(units: Uint16Array, at: number, count: number, value: number): void {
  for (let index = at + count - 1; index >= at; index--) {
    units[index] = CODE_ZERO + (value % 10)
    value = Math.floor(value / 10)
  }
}
