// The upload page: send one image as a study, poll it, show the verdict and the overlay.
// The API key lives in sessionStorage (this tab only) and is sent as a bearer header.

const KEY_STORAGE = 'btd-api-key';
const POLL_MS = 500;
const POLL_LIMIT_MS = 5 * 60 * 1000;

const $ = (id) => document.getElementById(id);
const keyInput = $('api-key');
const fileInput = $('file');
const dropZone = $('drop-zone');
const statusLine = $('status');
const errorLine = $('error');
let overlayUrl;

function readKeyFromFragment() {
  // `npm start` prints a link with #key=…: fragments never reach a server or its logs.
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(KEY_STORAGE, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
}

function showStatus(text) {
  statusLine.textContent = text;
}

function showError(text) {
  errorLine.textContent = text;
  errorLine.hidden = !text;
}

function authHeaders() {
  return { authorization: `Bearer ${keyInput.value.trim()}` };
}

async function errorMessage(response) {
  if (response.status === 401) return 'The API key was not accepted. Check it and try again.';
  const body = await response.json().catch(() => ({}));
  return body.message ? `Rejected: ${body.message}` : `The server answered ${response.status}.`;
}

function newIdempotencyKey() {
  // crypto.randomUUID exists only on https or localhost pages; getRandomValues works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function percent(value) {
  return `${(value * 100).toFixed(1)} %`;
}

function fillTable(table, probabilities) {
  const body = table.querySelector('tbody');
  body.replaceChildren();
  const rows = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, value] of rows) {
    const row = body.insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = percent(value);
  }
}

async function showOverlay(result) {
  const response = await fetch(result.overlayUrl, { headers: authHeaders() });
  if (!response.ok) return;
  if (overlayUrl) URL.revokeObjectURL(overlayUrl);
  overlayUrl = URL.createObjectURL(await response.blob());
  const image = $('overlay');
  image.alt = `Heatmap overlay of the uploaded slice; verdict ${result.label}.`;
  image.src = overlayUrl;
}

async function showResult(image) {
  const { result } = image;
  $('verdict').textContent = result.label;
  $('tumour-probability').textContent = `(tumour probability ${percent(result.tumorProbability)})`;
  fillTable($('probabilities'), result.probabilities);
  fillTable($('type-probabilities'), result.type.probabilities);
  $('type-label').textContent = result.type.label;
  $('type-disagrees').hidden = result.type.agreesWithDetection;
  $('cautions').textContent = result.cautions.map((caution) => `${caution.message[0].toUpperCase()}${caution.message.slice(1)}.`).join(' ');
  $('cautions').hidden = result.cautions.length === 0;
  $('models').textContent = `Models: ${result.models.map((m) => `${m.name} ${m.version}`).join(', ')}.`;
  await showOverlay(result);
  $('result').hidden = false;
}

async function poll(location) {
  const deadline = Date.now() + POLL_LIMIT_MS;
  while (Date.now() < deadline) {
    const response = await fetch(location, { headers: authHeaders() });
    if (!response.ok) throw new Error(await errorMessage(response));
    const study = await response.json();
    if (study.state === 'done') return study;
    if (study.state === 'failed') throw new Error(`Analysis failed: ${study.failure?.reason ?? 'unknown reason'}`);
    showStatus(study.state === 'processing' ? 'Analysing…' : 'Waiting for a worker…');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error('No result after five minutes. Is an inference worker running?');
}

/** For a file of several frames: how many it has and which were left out blank, which frame is shown, and how many were called tumour. */
function framesSummary(study, shown) {
  const { tumorImages = 0, analysedImages = 0 } = study.verdict ?? {};
  const frame = shown.dicom?.frameNumber ?? study.images.indexOf(shown) + 1;
  const skipped = (study.skippedFrames ?? []).map((skippedFrame) => skippedFrame.frameNumber);
  const frames = shown.dicom?.numberOfFrames ?? study.images.length;
  const blank = skipped.length === 0 ? '' : ` (blank, so left out: frame${skipped.length > 1 ? 's' : ''} ${skipped.join(', ')})`;
  return `${frames} frames${blank}: ${tumorImages} of ${analysedImages} analysed called tumour; frame ${frame}, the most likely, is shown`;
}

async function analyse(file) {
  showError('');
  $('result').hidden = true;
  if (!keyInput.value.trim()) {
    showError('Paste your API key first (step 1).');
    keyInput.focus();
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
  showStatus(`Uploading ${file.name}…`);
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const headers = { ...authHeaders(), 'idempotency-key': newIdempotencyKey() };
    const response = await fetch('/v1/studies', { method: 'POST', headers, body: form });
    if (!response.ok) throw new Error(await errorMessage(response));
    const study = await poll(response.headers.get('location'));
    // A multi-frame file is one image per frame: show the one the verdict points at, most likely a tumour.
    const shown = study.images.find((image) => image.imageId === study.verdict?.imageId) ?? study.images.find((image) => image.result);
    await showResult(shown);
    showStatus(shown.dicom?.numberOfFrames ? `Done: ${file.name}, ${framesSummary(study, shown)}.` : `Done: ${file.name}.`);
  } catch (error) {
    showStatus('No result.');
    showError(error instanceof Error ? error.message : String(error));
  }
}

readKeyFromFragment();
keyInput.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
fileInput.addEventListener('change', () => {
  if (fileInput.files?.[0]) void analyse(fileInput.files[0]);
});
dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('dragging');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('dragging');
  const file = event.dataTransfer?.files?.[0];
  if (file) void analyse(file);
});
