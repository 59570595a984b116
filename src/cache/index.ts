export {
  AttributeCache,
  MalformedMirrorRow,
  MIRROR_ZONE,
  cacheRotationThresholdDefault,
  cacheGenerationBytesMaxDefault,
  cacheEntryOverheadBytes,
  initialCacheState,
  cacheState,
  cacheSettings,
  sameCacheSettings,
  validateCacheSettings,
  decodeSegment,
  segmentRowKey,
} from './cache.ts'
export type { MirrorSink, CacheCheck, CacheLookup, CacheSettings, CacheState } from './cache.ts'
