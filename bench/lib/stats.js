/** Middle value (the upper of the two middle ones for an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The q-quantile by nearest rank (0 the least, 1 the greatest value); null for no values. */
export const quantile = (xs, q) => (xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1 + (q === 0 ? 1 : 0))]);
