export { initBackend, getBackendInfo, registerFastWasmKernels } from './backend/index.js';
export type { BackendInfo } from './backend/index.js';
export { ImageDecodeError } from './data/image-decode-error.js';
export { decodeGrey, decodeRasterGrey, decodeRgb, MAX_INPUT_PIXELS, type GreyImage } from './data/decode-image.js';
export { inflationBytes, MAX_INFLATED_DICOM_BYTES } from './data/dicom-inflate.js';
export { decodeDicomGrey, isAnalysedModality, isDicom, openDicomImage, parseDicomFile, readDicomHeader, slicePlane, type DicomHeader, type DicomIdentifiers, type DicomImage, type ParsedDicom, type SlicePlane } from './data/dicom.js';
export {
  preprocessImage,
  blankImage,
  contentShare,
  describeBlank,
  MIN_CONTENT_SHARE,
  type BlankImage,
  defaultPreprocessParams,
  MIN_IMAGE_SIDE,
  PREPROCESS_VERSION,
  type PreprocessParams,
  type PreprocessedImage,
  type InputGeometry,
} from './data/preprocess.js';
export { listLabeledImages, type LabeledFile, type DatasetListing } from './data/dataset-folder.js';
export { loadPreprocessedDataset, type PreprocessedDataset } from './data/preprocessed-dataset.js';
export { prepareTaskData, crossSplitDuplicates, type PreparedTaskData } from './data/prepare-task-data.js';
export { TASKS, TASK_CLASSES, isTask, classOfFolder, type Task } from './model/tasks.js';
export { ARTIFACT_FILES, assertManifest, type ModelManifest } from './model/manifest.js';
export { readArtifactDir, type ArtifactFiles } from './model/artifact.js';
export { loadModel, predictionFrom, preprocessShared, type LoadedModel, type ServingModel, type Prediction, type PredictOptions } from './model/loaded-model.js';
export {
  basePieces,
  combinePieces,
  meanOfMembers,
  rotationPieces,
  type ForwardPiece,
  type ForwardPlan,
  type PieceResult,
  type LocatorKind,
  type MirrorView,
} from './model/forward-pieces.js';
export type { Box, Heatmap, Point } from './model/heatmap.js';
export { renderOverlay } from './model/overlay.js';
export { writeInitialArtifact } from './model/initial-artifact.js';
export { trainModel, type TrainOptions, type TrainResult } from './train/train-model.js';
export { checkTrainOptions, type CheckedTrainOptions } from './train/train-options.js';
export { InvalidOptionsError } from './train/invalid-options.error.js';
export { CheckpointUnusableError } from './train/checkpoint-unusable.error.js';
export { trainLocator, type LocatorOptions } from './train/train-locator.js';
export { calibrateArtifact, type CalibrateOptions } from './train/calibrate-artifact.js';
export { evaluateModel, evaluateOnDataset, type EvaluationResult } from './eval/evaluate.js';
export { readOutlines, type Outlines } from './eval/outlines.js';
