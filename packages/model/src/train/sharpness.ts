/**
 * Sharpness-aware minimisation (Foret et al., ICLR 2021): each step takes the gradient at weights
 * moved uphill by `rho` along the batch's normalised gradient, w + rho · g / ‖g‖, and applies it
 * at w. It seeks weights whose whole neighbourhood has a low loss, which tends to generalise
 * better than a sharp minimum; a step costs two gradient passes instead of one.
 *
 * Writes the moved trainable weights into `out`. `grads[w][k]` is worker w's gradient of weight k,
 * `shares[w]` its share of the batch; the workers' gradients are averaged with those shares, as
 * the optimiser averages them. Returns the norm of the averaged gradient.
 */
export function sharpnessProbe(weights: Float32Array[], grads: Float32Array[][], shares: number[], rho: number, out: Float32Array[]): number {
  const mean = weights.map((w, k) => {
    const g = new Float32Array(w.length);
    grads.forEach((perWorker, worker) => {
      const part = perWorker[k] as Float32Array;
      const share = shares[worker] as number;
      for (let i = 0; i < g.length; i++) g[i] = (g[i] as number) + share * (part[i] as number);
    });
    return g;
  });
  let squares = 0;
  for (const g of mean) for (let i = 0; i < g.length; i++) squares += (g[i] as number) ** 2;
  const norm = Math.sqrt(squares);
  const scale = norm > 0 ? rho / norm : 0;
  weights.forEach((w, k) => {
    const g = mean[k] as Float32Array;
    const target = out[k] as Float32Array;
    for (let i = 0; i < w.length; i++) target[i] = (w[i] as number) + scale * (g[i] as number);
  });
  return norm;
}
