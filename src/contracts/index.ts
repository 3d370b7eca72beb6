/**
 * relp's file contracts: one schema, one reader and one writer per file kind (`run.json`,
 * `circuit.json`, `faithfulness.json`, with versions and provenance; MIB's circuit file). Everything that reads or
 * writes these files goes through here; the viewer's page code imports only the types.
 */
export { ContractError } from './errors.ts';
export { parseJsonText } from './json-text.ts';
export { ProvenanceSchema, datasetHash, makeProvenance, modelHash, writtenBy, type Provenance, type PairText, type HashableModel } from './provenance.ts';
export { SCORE_AXES, SCORE_LAYOUTS, ScoreTensorSchema, flattenTensor, type ScoreAxis, type ScoreTensor } from './score-tensor.ts';
export { RUN_VERSION, RUN_VERSIONS_READ, RunFileSchema, RunFileV1Schema, RunPairSchema, parseRunFile, readRunFile, runFileOf, runFilePath, runPairs, writeRunFile, type RunFile, type RunFileContent, type RunPair } from './run.ts';
export {
  CIRCUIT_VERSION,
  CIRCUIT_FEATURE_TYPES,
  CircuitFileSchema,
  CircuitFileLegacySchema,
  parseCircuitFile,
  readCircuitFile,
  writeCircuitFile,
  type CircuitFile,
  type CircuitFileContent,
  type CircuitFeatureType,
  type CircuitLink,
  type CircuitNode,
} from './circuit.ts';
export {
  FAITHFULNESS_VERSION,
  FaithfulnessFileSchema,
  FaithfulnessCurveSchema,
  MibCurveScoresSchema,
  parseFaithfulnessFile,
  readFaithfulnessFile,
  writeFaithfulnessFile,
  type CurvePoint,
  type FaithfulnessCurve,
  type FaithfulnessFile,
  type MibCurveScores,
} from './faithfulness.ts';
export { MibCfgSchema, MibFileSchema, parseMibFile, readMibFile, writeMibFile, type MibCfg, type MibFile } from './mib.ts';
export { RUN_FOLDER_FILES, prepareRunFolder, describeProvenance, RunFolderConflictError, type RunFolderOptions, type RunFacts } from './run-folder.ts';
export { jsonSchemas } from './json-schema.ts';
