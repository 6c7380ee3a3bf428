import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { batchToInner, im2colRows } from './channel-ops.js';
import { swapOuterAndInnerAxes } from './heap-transpose.js';
import { disposeAll, runWasmKernel } from './kernel-utils.js';

/**
 * Floats of dy per matrix product: 512 kB, so that the operand XNNPACK packs and re-reads for
 * every tile of rows stays in a core's L2 cache.
 */
const DY_CHUNK_FLOATS = 131072;

/**
 * Filter gradient of a stride-1 convolution as matrix products:
 * dW[(i, j, ci), co] = Σ over (y, x, b) of im2col(x)[(i, j, ci), (y, x, b)] · dy[b, y, x, co],
 * taken a few output rows at a time (dy as [H, W, N, C] makes each chunk contiguous) and added
 * up. Done as one convolution with dy as a 96×96 filter, XNNPACK re-read that whole filter
 * from memory for every few output values, and the gradient cost 1.8–2.3 times the forward
 * convolution of its layer; this way, 1.1–1.4 times, of which the products alone about 1
 * (batch 32, layers from 48² 32→32 to 12² 128→128), the rest mostly x moved to [Cin, H, W, N]
 * and the im2col rows (nine copies of x for a 3×3 kernel, made by block copies).
 */
export function filterGradientByMatMul(backend: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inChannels: cin, outChannels: cout, outHeight: ho, outWidth: wo, batchSize: n } = info;
  const window = { kh, kw, top: info.padInfo.top, left: info.padInfo.left, wo };
  const xT = swapOuterAndInnerAxes(backend, x);
  const dyT = batchToInner(backend, dy);
  const rowsPerChunk = Math.max(1, Math.floor(DY_CHUNK_FLOATS / (wo * n * cout)));
  const sum = new Float64Array(kh * kw * cin * cout);
  for (let y0 = 0; y0 < ho; y0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, ho - y0);
    const columns = rows * wo * n;
    const a = im2colRows(backend, xT, window, y0, rows);
    // A fresh tensor per chunk: the backend caches packed matrix operands by tensor.
    const b = backend.makeOutput([columns, cout], 'float32');
    (backend.typedArrayFromHeap(b) as Float32Array).set((backend.typedArrayFromHeap(dyT) as Float32Array).subarray(y0 * wo * n * cout, (y0 + rows) * wo * n * cout));
    const part = runWasmKernel(tf.BatchMatMul, backend, { a, b }, { transposeA: false, transposeB: false });
    const values = backend.typedArrayFromHeap(part) as Float32Array;
    for (let k = 0; k < sum.length; k++) sum[k]! += values[k]!;
    disposeAll(backend, a, b, part);
  }
  disposeAll(backend, xT, dyT);
  const out = backend.makeOutput([kh, kw, cin, cout], 'float32');
  (backend.typedArrayFromHeap(out) as Float32Array).set(sum);
  return out;
}
