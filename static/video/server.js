// Talking to the server over HTTP: the API key (as on the image page), uploads, frames, exported jobs.

import { apiKey } from '../common.js';

// A scaled-out server (Ray Serve, deploy/ray/) routes by X-Sam3-Image-Key: the upload, its frames and the socket
// all carry the video's key (the SHA-256 of the file, or of its URL), so they reach the replica that holds it.
let routingKey = null;
export function setRoutingKey(key) { routingKey = key; }
export function getRoutingKey() { return routingKey; }

export function socketUrl(path) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams();
  const key = apiKey();
  if (key) params.set('api_key', key);
  if (routingKey) params.set('image_key', routingKey);
  return `${scheme}//${location.host}${path}${params.toString() ? `?${params}` : ''}`;
}

function headers(extra = {}) {
  const key = apiKey();
  return { ...(key ? { 'X-API-Key': key } : {}), ...(routingKey ? { 'X-Sam3-Image-Key': routingKey } : {}), ...extra };
}

// The routing key of a video: the hex SHA-256 of the file's bytes, or of the URL's text (image_key.js).
export async function videoKey(source) {
  return window.sam3ImageKey.imageKey(source instanceof Blob ? await source.arrayBuffer() : source.video_url);
}

// A fetch that throws an Error carrying the server's own message (its error envelope's "detail").
async function request(url, options = {}) {
  const response = await fetch(url, { ...options, headers: headers(options.headers) });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (err) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}

// A video file, or {video_url}, decoded once by the server: -> {video_id, width, height, fps, frame_count}.
export async function uploadVideo(source) {
  if (source instanceof Blob) {
    const form = new FormData();
    form.append('video', source, source.name || 'video');
    return (await request('/video/uploads', { method: 'POST', body: form })).json();
  }
  const body = JSON.stringify(source);
  return (await request('/video/uploads', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } })).json();
}

// Decoded frames as ImageBitmaps, fetched once each (the few most recent are kept).
export class FrameCache {
  constructor(urlTemplate, keep = 48) {
    this.urlTemplate = urlTemplate;
    this.keep = keep;
    this.frames = new Map(); // frame -> Promise<ImageBitmap>
  }

  get(frame) {
    let entry = this.frames.get(frame);
    if (entry) this.frames.delete(frame); // re-inserted below: most recently used last
    else entry = this.load(frame).catch((err) => { this.frames.delete(frame); throw err; });
    this.frames.set(frame, entry);
    while (this.frames.size > this.keep) this.frames.delete(this.frames.keys().next().value);
    return entry;
  }

  async load(frame) {
    const response = await request(this.urlTemplate.replace('{frame}', String(frame)));
    return createImageBitmap(await response.blob());
  }
}

// An exported job's per-frame results (NDJSON) -> one COCO-RLE JSON document.
export async function exportedFrames(jobId) {
  const text = await (await request(`/video/jobs/${jobId}/frames`)).text();
  return text.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}

export async function exportedVideo(jobId) {
  return (await request(`/video/jobs/${jobId}/video.mp4`)).blob();
}
