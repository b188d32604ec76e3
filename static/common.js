// The API key of the page (both modes). Servers with SAM3_API_KEYS want one; browsers cannot set WebSocket
// headers, so it travels in the URL. Open the page once as /app/?api_key=KEY: it is remembered in this browser.
export function apiKey() {
  const fromUrl = new URLSearchParams(location.search).get('api_key');
  try {
    if (fromUrl) localStorage.setItem('sam3_api_key', fromUrl);
    return fromUrl || localStorage.getItem('sam3_api_key');
  } catch (err) { return fromUrl; } // storage blocked (private mode): the URL's key still works
}
