import { Worker } from 'node:worker_threads'
import type { WorkerOptions } from 'node:worker_threads'

/**
 * A worker thread running one of this package's TypeScript modules, as the
 * process runs them: the eval'd bootstrap registers tsx's loader in the new
 * thread (a loader registered in the main thread does not reach a worker),
 * then imports `module`. `tsx` is a runtime dependency (`bin/tally.mjs`
 * registers it the same way), so this works from a checkout and from npm.
 */
export function startSourceWorker(module: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  const loader = import.meta.resolve('tsx/esm/api')
  const bootstrap = `import(${JSON.stringify(loader)}).then(({ register }) => { register(); return import(${JSON.stringify(module.href)}) })`
  return new Worker(bootstrap, { ...options, eval: true })
}
