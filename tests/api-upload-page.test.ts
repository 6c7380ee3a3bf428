import { existsSync, readFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mriSlices } from './api-fixtures.js';
import { useApiHarness } from './api-harness.js';
import { dicomFile } from './helpers/dicom-file.js';
import { headPhantom } from './helpers/head-phantom.js';

const CHROMIUM = '/usr/bin/chromium';

/**
 * The part of the page's DOM that the functions these tests run in Chromium read. The tests are compiled
 * for Node, without the DOM's types; only those functions see a document.
 */
declare const document: { getElementById(id: string): { readonly naturalWidth: number; readonly textContent: string | null } | null };
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`upload page tests skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);

describe.skipIf(!hasChromium)('upload page in Chromium', () => {
  const harness = useApiHarness();
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    page = await browser.newPage();
  });
  afterEach(async () => {
    await page.close();
  });

  it('uploads a slice and shows the verdict, probabilities, type and overlay', async () => {
    const [slice] = mriSlices('yes', 1);
    await harness.startWorker();
    await page.goto(`${harness.env.url}/#key=${encodeURIComponent(harness.env.keys.alice)}`);
    // The key is taken from the fragment and removed from the address bar.
    expect(new URL(page.url()).hash).toBe('');
    await page.setInputFiles('#file', { name: slice!.name, mimeType: 'image/jpeg', buffer: slice!.bytes });

    await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#verdict').textContent()).toMatch(/^(tumor|no_tumor)$/);
    expect(await page.locator('#tumour-probability').textContent()).toMatch(/tumour probability \d+\.\d %/);
    expect(await page.locator('#probabilities tbody tr').count()).toBe(2);
    expect(await page.locator('#type-probabilities tbody tr').count()).toBe(4);
    const verdict = await page.locator('#verdict').textContent();
    const typeLabel = await page.locator('#type-label').textContent();
    expect(await page.locator('#type-disagrees').isHidden()).toBe((verdict === 'tumor') === (typeLabel !== 'no_tumor'));
    await page.waitForFunction(() => document.getElementById('overlay')!.naturalWidth > 0);
    expect(await page.locator('#overlay').getAttribute('alt')).toContain('Heatmap overlay');
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(await page.locator('#status').textContent()).toContain('Done');
    expect(await page.locator('#cautions').isHidden()).toBe(true);
  });

  it('warns not to rely on the answer for a DICOM slice that is not axial', async () => {
    await harness.startWorker();
    const sagittal = dicomFile({ width: 64, height: 48, pixels: headPhantom(64, 48), bitsAllocated: 8, orientation: [0, 1, 0, 0, 0, -1] });
    await page.goto(`${harness.env.url}/#key=${encodeURIComponent(harness.env.keys.alice)}`);
    await page.setInputFiles('#file', { name: 'sagittal.dcm', mimeType: 'application/dicom', buffer: sagittal });
    await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#cautions').textContent()).toMatch(/^Sagittal slice: the detector is meant for axial slices through the brain.*do not rely on this answer\.$/);
  });

  it('shows, for a multi-frame DICOM file, the frame most likely to show a tumour and how many frames do', async () => {
    await harness.startWorker();
    const series = readFileSync(new URL('./fixtures/dicom/rle-3-frames.dcm', import.meta.url));
    await page.goto(`${harness.env.url}/#key=${encodeURIComponent(harness.env.keys.alice)}`);
    await page.setInputFiles('#file', { name: 'series.dcm', mimeType: 'application/dicom', buffer: series });
    await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#status').textContent()).toMatch(/^Done: series\.dcm, 3 frames: [0-3] of 3 analysed called tumour; frame [1-3], the most likely, is shown\.$/);
  });

  it('says which frames of a multi-frame DICOM file were left out as blank', async () => {
    await harness.startWorker();
    const side = 64;
    const slice = Uint16Array.from(headPhantom(side, side), (v) => v * 16);
    const pixels = new Uint16Array(3 * side * side);
    pixels.set(slice, 2 * side * side); // frames 1 and 2 blank padding, frame 3 the slice
    await page.goto(`${harness.env.url}/#key=${encodeURIComponent(harness.env.keys.alice)}`);
    await page.setInputFiles('#file', { name: 'padded.dcm', mimeType: 'application/dicom', buffer: dicomFile({ width: side, height: side, pixels, frames: 3 }) });
    await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#status').textContent()).toMatch(/^Done: padded\.dcm, 3 frames \(blank, so left out: frames 1, 2\): [01] of 1 analysed called tumour; frame 3, the most likely, is shown\.$/);
  });

  it('shows the reason when a file is refused', async () => {
    await page.goto(`${harness.env.url}/#key=${encodeURIComponent(harness.env.keys.alice)}`);
    await page.setInputFiles('#file', { name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('not an image\n'.repeat(50)) });
    const error = page.locator('#error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(/Rejected: "notes\.jpg".*JPEG, PNG or DICOM/);
    expect(await error.getAttribute('role')).toBe('alert');
    expect(await harness.env.objectKeys()).toEqual([]);
  });

  it('asks for a key before uploading, and says so when a key is wrong', async () => {
    const [slice] = mriSlices('no', 1);
    await page.goto(harness.env.url);
    await page.setInputFiles('#file', { name: slice!.name, mimeType: 'image/jpeg', buffer: slice!.bytes });
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error').textContent()).toContain('Paste your API key');

    await page.fill('#api-key', 'definitely-not-a-valid-key');
    await page.setInputFiles('#file', { name: 'again.jpg', mimeType: 'image/jpeg', buffer: slice!.bytes });
    await page.waitForFunction(() => document.getElementById('error')?.textContent?.includes('not accepted'));
  });
});
