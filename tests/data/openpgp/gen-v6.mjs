import * as openpgp from 'openpgp';
import { writeFileSync, readFileSync } from 'fs';
const config = { v6Keys: true };
const { privateKey, publicKey } = await openpgp.generateKey({
  type: 'curve25519', userIDs: [{ name: 'V6 Test', email: 'v6@example.org' }], format: 'armored', config });
writeFileSync('v6.asc', publicKey);
const priv = await openpgp.readPrivateKey({ armoredKey: privateKey });
const text = readFileSync('SUMS', 'utf8');
const msg = await openpgp.createMessage({ binary: new Uint8Array(readFileSync('SUMS')) });
const det = await openpgp.sign({ message: msg, signingKeys: priv, detached: true, format: 'armored' });
writeFileSync('SUMS.v6.asc', det);
const cmsg = await openpgp.createCleartextMessage({ text });
const clear = await openpgp.sign({ message: cmsg, signingKeys: priv });
writeFileSync('SUMS.v6.clear', clear);
const k = await openpgp.readKey({ armoredKey: publicKey });
console.log(k.getFingerprint(), k.keyPacket.version, k.getAlgorithmInfo());
for (const s of k.subkeys) console.log('sub', s.getFingerprint(), s.getAlgorithmInfo(), s.keyPacket.version);
