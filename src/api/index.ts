export { buildApi, bodyBytesMaxDefault, bodyBytesMaxFor } from './app.ts'
export type { ApiOptions } from './app.ts'
export { transportLimitsDefault } from './transport.ts'
export type { TransportLimits } from './transport.ts'
