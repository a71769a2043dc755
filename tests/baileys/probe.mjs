// Third-party proof for the sandbox (run by tests/sim_baileys.rs): Baileys, installed from npm
// in BAILEYS_DIR (outside this repository), is pointed at a sandbox with the sandbox's root key
// as its trust anchor. It prints one JSON line per event: each QR, the pairing, the 515 close,
// and "open" once it has logged in again; then it exits (0 on "open"). With MODE `code`, once
// the first QR shows that the server sent pair-device, it asks for a pairing code for PHONE with
// its own requestPairingCode and prints it ({"event":"code"}) for the sandbox's phone to type.
// Started again on the same AUTH_DIR, it logs in with the saved credentials.
//
// Usage: BAILEYS_DIR=/path/with/node_modules node probe.mjs WS_URL ROOT_HEX AUTH_DIR [MODE PHONE]
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const dir = process.env.BAILEYS_DIR
const require = createRequire(path.join(dir, 'package.json'))
const load = async (name) => import(pathToFileURL(require.resolve(name)).href)
const baileys = await load('baileys')
const pino = (await load('pino')).default

const [wsUrl, rootHex, authDir, mode, phone] = process.argv.slice(2)
// Baileys checks the intermediate certificate against this constant: trust the sandbox root.
baileys.WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootHex, 'hex')
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

let attempts = 0
let codeAsked = false
async function start() {
  attempts += 1
  const { state, saveCreds } = await baileys.useMultiFileAuthState(authDir)
  const sock = baileys.makeWASocket({
    waWebSocketUrl: wsUrl,
    auth: state,
    logger: pino({ level: 'silent' }),
    markOnlineOnConnect: false,
    syncFullHistory: false,
  })
  sock.ev.on('creds.update', saveCreds)
  sock.ev.on('connection.update', (u) => {
    if (u.qr) out({ event: 'qr', qr: u.qr })
    if (u.qr && mode === 'code' && !codeAsked) {
      codeAsked = true
      sock
        .requestPairingCode(phone)
        .then((code) => out({ event: 'code', code }))
        .catch((e) => out({ event: 'code_failed', error: String(e) }))
    }
    if (u.isNewLogin) out({ event: 'paired', me: sock.authState.creds.me?.id })
    if (u.connection === 'open') {
      out({ event: 'open', me: sock.authState.creds.me?.id })
      setTimeout(() => process.exit(0), 200)
    }
    if (u.connection === 'close') {
      const code = u.lastDisconnect?.error?.output?.statusCode
      out({ event: 'close', code })
      if (code === baileys.DisconnectReason.restartRequired && attempts < 3) start()
      else process.exit(2)
    }
  })
}
start()
