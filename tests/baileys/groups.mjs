// Third-party proof of the sandbox's groups (run by tests/sim_baileys.rs): Baileys, already
// paired (AUTH_DIR holds its credentials), logs in and runs its own group calls against the
// sandbox, printing one JSON line per step ({"step", "result"} or {"step", "error", "code"}).
// Then it prints {"event":"ready"} and reports the group events it receives
// ({"event":"group-participants.update"|"groups.update", "data"}), while reading commands on
// stdin, one per line: `requests` (groupRequestParticipantsList), `leave` (groupLeave), `exit`.
//
// Usage: BAILEYS_DIR=/path/with/node_modules node groups.mjs WS_URL ROOT_HEX AUTH_DIR MEMBER OTHER
// (MEMBER and OTHER: phone numbers of simulated people to put in the group)
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'
import { pathToFileURL } from 'node:url'

const dir = process.env.BAILEYS_DIR
const require = createRequire(path.join(dir, 'package.json'))
const load = async (name) => import(pathToFileURL(require.resolve(name)).href)
const baileys = await load('baileys')
const pino = (await load('pino')).default

const [wsUrl, rootHex, authDir, member, other] = process.argv.slice(2)
baileys.WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootHex, 'hex')
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const pn = (phone) => `${phone}@s.whatsapp.net`

// One call: its result, or WhatsApp's refusal code, on one line.
async function step(name, call) {
  try {
    const result = await call()
    out({ step: name, result: result ?? null })
    return result
  } catch (e) {
    // Baileys puts an IQ error's code in the Boom's data (assertNodeErrorFree).
    const code = typeof e?.data === 'number' ? e.data : (e?.output?.statusCode ?? null)
    out({ step: name, error: String(e?.message ?? e), code })
    return undefined
  }
}

const { state, saveCreds } = await baileys.useMultiFileAuthState(authDir)
const sock = baileys.makeWASocket({
  waWebSocketUrl: wsUrl,
  auth: state,
  logger: pino({ level: 'silent' }),
  markOnlineOnConnect: false,
  syncFullHistory: false,
})
sock.ev.on('creds.update', saveCreds)
sock.ev.on('group-participants.update', (data) => out({ event: 'group-participants.update', data }))
sock.ev.on('groups.update', (data) => out({ event: 'groups.update', data }))
sock.ev.on('connection.update', async (u) => {
  if (u.connection === 'close') {
    out({ event: 'close', code: u.lastDisconnect?.error?.output?.statusCode })
    process.exit(2)
  }
  if (u.connection !== 'open') return
  out({ event: 'open', me: sock.authState.creds.me?.id })
  const meta = await step('groupCreate', () => sock.groupCreate('Baileys group', [pn(member)]))
  if (!meta) process.exit(3)
  const id = meta.id
  const summary = (m) => ({
    id: m.id, subject: m.subject, desc: m.desc ?? null, descId: m.descId ?? null,
    announce: m.announce, restrict: m.restrict, ephemeral: m.ephemeralDuration ?? null,
    joinApprovalMode: m.joinApprovalMode, memberAddMode: m.memberAddMode, owner: m.owner,
    participants: m.participants.map((p) => ({ id: p.id, admin: p.admin ?? null })),
  })
  out({ step: 'created', result: summary(meta) })
  await step('groupParticipantsUpdate.add', async () =>
    (await sock.groupParticipantsUpdate(id, [pn(other), pn(member)], 'add')).map(({ status, jid }) => ({ status, jid })))
  await step('groupParticipantsUpdate.promote', async () =>
    (await sock.groupParticipantsUpdate(id, [pn(member)], 'promote')).map(({ status, jid }) => ({ status, jid })))
  await step('groupParticipantsUpdate.demote', async () =>
    (await sock.groupParticipantsUpdate(id, [pn(other)], 'demote')).map(({ status, jid }) => ({ status, jid })))
  await step('groupParticipantsUpdate.remove', async () =>
    (await sock.groupParticipantsUpdate(id, [pn(other)], 'remove')).map(({ status, jid }) => ({ status, jid })))
  await step('groupInviteCode', () => sock.groupInviteCode(id))
  await step('groupRevokeInvite', () => sock.groupRevokeInvite(id))
  await step('groupInviteCode.after', () => sock.groupInviteCode(id))
  await step('groupUpdateSubject', () => sock.groupUpdateSubject(id, 'Renamed by Baileys'))
  await step('groupUpdateDescription', () => sock.groupUpdateDescription(id, 'Described by Baileys'))
  await step('groupUpdateDescription.again', () => sock.groupUpdateDescription(id, 'Described twice'))
  await step('groupSettingUpdate.announcement', () => sock.groupSettingUpdate(id, 'announcement'))
  await step('groupSettingUpdate.locked', () => sock.groupSettingUpdate(id, 'locked'))
  await step('groupSettingUpdate.not_announcement', () => sock.groupSettingUpdate(id, 'not_announcement'))
  await step('groupToggleEphemeral', () => sock.groupToggleEphemeral(id, 604800))
  await step('groupMemberAddMode', () => sock.groupMemberAddMode(id, 'admin_add'))
  await step('groupJoinApprovalMode', () => sock.groupJoinApprovalMode(id, 'on'))
  await step('groupMetadata', async () => summary(await sock.groupMetadata(id)))
  await step('groupFetchAllParticipating', async () =>
    Object.values(await sock.groupFetchAllParticipating()).map((g) => ({ id: g.id, subject: g.subject, size: g.size })))
  await step('groupRequestParticipantsList', () => sock.groupRequestParticipantsList(id))
  await step('groupMetadata.unknown', () => sock.groupMetadata('120363999999999999@g.us'))
  out({ event: 'ready', group: id })
  const lines = readline.createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (line === 'requests') await step('groupRequestParticipantsList.later', () => sock.groupRequestParticipantsList(id))
    if (line === 'leave') await step('groupLeave', () => sock.groupLeave(id))
    if (line === 'exit') process.exit(0)
  }
})
