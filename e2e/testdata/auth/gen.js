// Regenerates the Firebase Auth export fixtures of this directory with
// Firebase's own code, so the tests read files exactly as Firebase writes
// them:
//
//   auth-export.json, auth-export.csv  firebase-tools' accountExporter
//       (what `firebase auth:export` runs), fed the accounts below as the
//       Identity Toolkit API returns them (URL-safe base64 hashes, version 0);
//   emulator-accounts.json             the Auth emulator's accounts (the
//       shape of emulators:export's auth_export/accounts.json), read back
//       from a running emulator after importing the accounts into a fresh
//       project.
//
// Password hashes are computed here with Node's crypto (scrypt, AES-256-CTR):
// an implementation independent of passwords/firebasescrypt. passwords.json
// lists each uid's password for the tests.
//
// Usage (from the repository root, services up):
//   . .local/services.env
//   node e2e/testdata/auth/gen.js .local/npm/node_modules/firebase-tools
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");

const tools = path.resolve(process.argv[2] || ".local/npm/node_modules/firebase-tools");
const out = __dirname;

// The public firebase/scrypt sample configuration (not a real project's).
const hashConfig = {
  signerKey: "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
  saltSeparator: "Bw==",
  rounds: 8,
  memCost: 14,
};

function firebaseScrypt(password, salt) {
  const key = crypto.scryptSync(Buffer.from(password, "utf8"), Buffer.concat([salt, Buffer.from(hashConfig.saltSeparator, "base64")]), 32, {
    N: 1 << hashConfig.memCost, r: hashConfig.rounds, p: 1, maxmem: 256 << 20,
  });
  const c = crypto.createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.from(hashConfig.signerKey, "base64")), c.final()]);
}

const urlSafe = (b) => b.toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const saltFor = (uid) => crypto.createHash("sha256").update("salt:" + uid).digest().subarray(0, 12);

const passwords = {
  "fx-alice": "correct horse battery staple",
  "fx-bob": "hunter2",
  "fx-erin": "pässwörd ✓ 🔑",
  "fx-frank": "frank's \"quoted\" password",
};

// Accounts as accounts:batchGet / downloadAccount return them.
const accounts = [
  {
    localId: "fx-alice", email: "alice@fixture.test", emailVerified: true, displayName: 'Alice, "the first"',
    photoUrl: "https://example.test/alice.png", createdAt: "1600000000123", lastLoginAt: "1700000000456",
    // Written by hand to keep a number beyond 2^64 and escaped quotes.
    customAttributes: '{"role":"admin","quote":"say \\"hi\\"","path":"C:\\\\dir","n":12345678901234567890}',
    providerUserInfo: [
      { providerId: "google.com", rawId: "109876543210", email: "alice@gmail.test", displayName: "Alice G", photoUrl: "https://example.test/g.png" },
      { providerId: "password", rawId: "alice@fixture.test", email: "alice@fixture.test", federatedId: "alice@fixture.test" },
    ],
    mfaInfo: [{ mfaEnrollmentId: "mfa-alice-1", displayName: "work phone", phoneInfo: "+15555550100", enrolledAt: "2024-01-02T03:04:05.678Z" }],
  },
  {
    localId: "fx-bob", email: "bob@fixture.test", emailVerified: false, displayName: "Bob\nSecond line", disabled: true,
    createdAt: "1600000001000",
    providerUserInfo: [
      { providerId: "github.com", rawId: "4242", displayName: "bob, builder" },
      { providerId: "facebook.com", rawId: "fb-77", email: "bob@fb.test" },
    ],
  },
  {
    localId: "fx-carol", email: "carol@fixture.test", emailVerified: true, createdAt: "1600000002000",
    providerUserInfo: [{ providerId: "apple.com", rawId: "apple.carol", email: "carol@privaterelay.test" }],
  },
  { localId: "fx-dave", phoneNumber: "+15555550123", createdAt: "1600000003000", providerUserInfo: [{ providerId: "phone", rawId: "+15555550123", phoneNumber: "+15555550123" }] },
  { localId: "fx-erin", email: "erin@fixture.test", displayName: "Érin Ünicode ✓", createdAt: "1600000004000", customAttributes: '{"langs":["fr","de"]}' },
  { localId: "fx-frank", email: "ALICE@fixture.test", createdAt: "1600000005000" },
  { localId: "fx-bad-hash", email: "bad@fixture.test", createdAt: "1600000006000", passwordHash: "not*base64!", salt: "AAAA", version: 0 },
];
for (const a of accounts) {
  if (passwords[a.localId]) {
    const salt = saltFor(a.localId);
    a.passwordHash = urlSafe(firebaseScrypt(passwords[a.localId], salt));
    a.salt = urlSafe(salt);
    a.version = 0;
  }
}

async function exportFile(format, file) {
  const apiv2 = require(path.join(tools, "lib/apiv2"));
  let page = 0;
  apiv2.Client.prototype.post = async function (p, body) {
    if (!p.endsWith("/downloadAccount")) throw new Error("unexpected call " + p);
    // Two pages, to exercise the exporter's separators between pages.
    const pages = [accounts.slice(0, 4), accounts.slice(4), []];
    const users = JSON.parse(JSON.stringify(pages[page]));
    page++;
    return { body: { users, nextPageToken: page < 3 ? "page" + page : undefined } };
  };
  const { serialExportUsers } = require(path.join(tools, "lib/accountExporter"));
  const writeStream = fs.createWriteStream(file);
  if (format === "json") writeStream.write('{"users": [' + os.EOL); // as commands/auth-export does
  await serialExportUsers("demo-fixture", { format, writeStream, batchSize: 1000 });
  if (format === "json") writeStream.write("]}");
  await new Promise((resolve) => writeStream.end(resolve));
}

async function emulatorAccounts(file) {
  const host = process.env.FIREBASE_AUTH_EMULATOR_HOST;
  if (!host) throw new Error("FIREBASE_AUTH_EMULATOR_HOST is not set: . .local/services.env");
  const project = "demo-fixture-" + crypto.randomBytes(4).toString("hex");
  const base = `http://${host}/identitytoolkit.googleapis.com/v1/projects/${project}`;
  const call = async (p, body) => {
    const r = await fetch(base + p, {
      method: body ? "POST" : "GET", headers: { Authorization: "Bearer owner", "Content-Type": "application/json" },
      body: body && JSON.stringify(body),
    });
    const j = await r.json();
    if (!r.ok || (j.error && j.error.length)) throw new Error(p + ": " + JSON.stringify(j));
    return j;
  };
  // Imported scrypt users keep their hash; users created with a raw password
  // get the emulator's fake hash, as in real emulator exports.
  const users = accounts.filter((a) => a.localId !== "fx-bad-hash").map((a) => {
    const u = JSON.parse(JSON.stringify(a));
    delete u.version;
    if (u.localId === "fx-erin" || u.localId === "fx-frank") {
      delete u.passwordHash;
      delete u.salt;
      u.rawPassword = passwords[u.localId];
    }
    return u;
  });
  await call("/accounts:batchCreate", { users });
  const listed = await call("/accounts:batchGet?maxResults=1000");
  fs.writeFileSync(file, JSON.stringify({ kind: listed.kind, users: listed.users }));
}

(async () => {
  await exportFile("json", path.join(out, "auth-export.json"));
  await exportFile("csv", path.join(out, "auth-export.csv"));
  await emulatorAccounts(path.join(out, "emulator-accounts.json"));
  fs.writeFileSync(path.join(out, "passwords.json"), JSON.stringify({ hashConfig, passwords }, null, 2) + "\n");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
