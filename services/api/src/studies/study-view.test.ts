import { describe, expect, it } from 'vitest';
import { typeAgreesWithDetection } from './study-view.js';

describe('typeAgreesWithDetection', () => {
  it('agrees when both models find a tumour, or neither does', () => {
    expect(typeAgreesWithDetection('tumor', 'glioma')).toBe(true);
    expect(typeAgreesWithDetection('tumor', 'pituitary')).toBe(true);
    expect(typeAgreesWithDetection('no_tumor', 'no_tumor')).toBe(true);
  });

  it('disagrees when only one of them finds a tumour', () => {
    expect(typeAgreesWithDetection('tumor', 'no_tumor')).toBe(false);
    expect(typeAgreesWithDetection('no_tumor', 'meningioma')).toBe(false);
  });
});
