/**
 * relp's circuit API (`import { runCircuit } from 'relp/circuits'`): the edge graph of a model,
 * edge attribution (EAP, EAP-IG, EAP with RelP rules, exact), edge selection and pruning,
 * faithfulness curves (with MIB's CPR / CMD), the circuit.json / faithfulness.json writers and MIB's
 * circuit file (toMib / fromMib).
 */
export { runCircuit, type CircuitRunOptions, type CircuitRun } from './run-circuit.ts';
export {
  buildGraph,
  graphFromModel,
  type GraphModel,
  edgeAt,
  edgeCountFormula,
  edgeIndex,
  edgeName,
  GQA_CONVENTIONS,
  headNode,
  parseGqa,
  layerTargets,
  mlpNode,
  type CircuitGraph,
  type GraphEdge,
  type GraphNode,
  type GraphShape,
  type GqaConvention,
  type GraphTarget,
  type HeadInput,
  type NodeKind,
} from './graph.ts';
export { graphForward, type EdgePatch, type GraphForwardOptions, type GraphProbes } from './graph-forward.ts';
export { postNormScaleHook, type PostNormKind } from './post-norm.ts';
export {
  attributeEdges,
  exactEdgeScores,
  parseEdgeMethod,
  nodeOutputs,
  EDGE_METHODS,
  type AttributeOptions,
  type EdgeMethod,
  type EdgeScores,
  type ExactOptions,
} from './attribute.ts';
export {
  countEdges,
  circuitNodes,
  pruneDangling,
  rankEdges,
  selectEdges,
  selectGreedy,
  selectThreshold,
  selectTopN,
  type Selection,
} from './prune.ts';
export {
  ablatedOutputs,
  evaluateCircuits,
  faithfulnessCurve,
  logSpacedSizes,
  MIB_FRACTIONS,
  mibAreas,
  mibScoresOfCurve,
  mibSizes,
  nodeCircuitFaithfulness,
  parseAblation,
  reach80,
  trapezoid,
  type Ablation,
  type CircuitEvaluation,
  type CurveOptions,
  type CurvePoint,
  type FaithfulnessOptions,
  type MeasuredCurve,
  type MibCurveScores,
} from './faithfulness.ts';
export { checkMibGraph, fromMib, mibCfg, toMib, type MibCircuit, type MibModelShape } from './mib.ts';
export {
  GPT2_SMALL_IOI_HEADS,
  gpt2SmallIoiHeads,
  headRocAuc,
  headScores,
  isGpt2SmallShape,
  patchingReferenceHeads,
  rocAuc,
  type HeadRef,
  type PatchingReferenceOptions,
} from './reference.ts';
export { circuitToJson, writeCircuitFiles, type CircuitExport } from './export.ts';
export type { FaithfulnessCurve } from '../contracts/faithfulness.ts';
export type { CircuitFile, CircuitFileContent, CircuitNode, CircuitLink } from '../contracts/circuit.ts';
