export { buildApi, bodyBytesMaxDefault } from './app.ts'
export type { ApiOptions } from './app.ts'
