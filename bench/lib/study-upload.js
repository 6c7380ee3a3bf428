// The load generator's side of `POST /v1/studies`, kept light: it shares the machine with the
// system it measures, so every millisecond of CPU it spends per request is taken from the system.
// The multipart bodies are encoded once, up front, and sent over kept-alive connections.
import { randomBytes } from 'node:crypto';
import http from 'node:http';

/**
 * A ready-to-send `multipart/form-data` body: a routine study of one image (a JPEG unless
 * `contentType` says otherwise), with `fields` (externalId, callbackUrl, …) as parts of their own.
 */
export function studyUploadBody(image, contentType = 'image/jpeg', fields = {}) {
  const boundary = `----btd-bench-${randomBytes(12).toString('hex')}`;
  const filename = contentType === 'application/dicom' ? 'scan.dcm' : 'scan.jpg';
  const part = (name, value) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const head =
    Object.entries({ priority: 'routine', ...fields }).map(([name, value]) => part(name, value)).join('') +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  const body = Buffer.concat([Buffer.from(head), image, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

const agent = new http.Agent({ keepAlive: true });

/** Sends one prepared body; resolves with the status and the parsed JSON answer. */
export function postStudy(url, apiKey, { body, contentType }) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${url}/v1/studies`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${apiKey}`, 'content-type': contentType, 'content-length': body.length } },
      (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: response.statusCode, body: JSON.parse(text) });
          } catch {
            resolve({ status: response.statusCode, body: text });
          }
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
