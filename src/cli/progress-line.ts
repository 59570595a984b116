/**
 * Progress for long CLI operations: a redrawn bar with ETA on a terminal,
 * plain lines (at most one every `plainIntervalMs`) otherwise, on stderr so
 * stdout stays data.
 */
export interface ProgressLine {
  update(state: { label: string; done: number; total: number | null; rate: number; etaSeconds: number | null; unit: string }): void
  done(): void
}

export function progressLine(stream: NodeJS.WriteStream = process.stderr, plainIntervalMs = 5000): ProgressLine {
  const tty = stream.isTTY === true
  let lastPlain = 0
  let drawn = false
  return {
    update({ label, done, total, rate, etaSeconds, unit }) {
      const fraction = total !== null && total > 0 ? Math.min(1, done / total) : null
      const counts = total === null ? `${done} ${unit}` : `${done}/${total} ${unit}`
      const speed = rate > 0 ? ` ${Math.round(rate)} ${unit}/s` : ''
      const eta = etaSeconds === null ? '' : ` ETA ${formatDuration(etaSeconds)}`
      if (tty) {
        const width = 30
        const bar = fraction === null ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '-')}] ${String(Math.floor(fraction * 100)).padStart(3)}% `
        stream.write(`\r\x1b[2K${label} ${bar}${counts}${speed}${eta}`)
        drawn = true
        return
      }
      const now = Date.now()
      if (now - lastPlain < plainIntervalMs) return
      lastPlain = now
      stream.write(`${label}: ${counts}${fraction === null ? '' : ` (${Math.floor(fraction * 100)}%)`}${speed}${eta}\n`)
    },
    done() {
      if (tty && drawn) stream.write('\n')
      drawn = false
    },
  }
}

export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds))
  const hours = Math.floor(whole / 3600)
  const minutes = Math.floor((whole % 3600) / 60)
  const rest = whole % 60
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${String(rest).padStart(2, '0')}` : `${minutes}:${String(rest).padStart(2, '0')}`
}
