// What both modes of the page share: the API key and file downloads.

// Servers with SAM3_API_KEYS want a key; browsers cannot set WebSocket headers, so it travels in the URL.
// Open the page once as /app/?api_key=KEY: it is remembered in this browser (localStorage).
export function apiKey() {
  const fromUrl = new URLSearchParams(location.search).get('api_key');
  try {
    if (fromUrl) localStorage.setItem('sam3_api_key', fromUrl);
    return fromUrl || localStorage.getItem('sam3_api_key');
  } catch (err) { return fromUrl; } // storage blocked (private mode): the URL's key still works
}

// Save a Blob as a file the browser downloads.
export function download(blob, name) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
