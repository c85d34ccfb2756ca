/* pkg/source's s3 kind without a network: AWS Signature Version 4 against AWS's
 * published examples, CDI's endpoint and region rules, the path encoding that is both
 * requested and signed, S3's XML error bodies and the object's own checksum. The kind
 * against a server that checks signatures (moto): tests/e2e/test_s3_import.sh. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "source/s3.h"

#define EMPTY SIGV4_EMPTY_SHA256

/* AWS's Signature Version 4 test suite, "get-vanilla" (aws-sig-v4-test-suite). */
Test(sigv4, aws_suite_get_vanilla)
{
  struct sigv4_header h[] = {
    { "host", "example.amazonaws.com" },
    { "x-amz-date", "20150830T123600Z" },
  };
  struct sigv4_request req = {
    .method = "GET", .canonical_uri = "/", .canonical_query = "", .headers = h,
    .n_headers = 2, .payload_sha256 = EMPTY, .region = "us-east-1", .service = "service",
    .amz_date = "20150830T123600Z", .access_key_id = "AKIDEXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  };
  char canonical[1024], auth[SIGV4_AUTH_MAX];
  cr_assert_eq(sigv4_canonical_request(&req, canonical, sizeof canonical), 0);
  cr_assert_str_eq(canonical, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z"
                              "\n\nhost;x-amz-date\n" EMPTY);
  cr_assert_eq(sigv4_authorization(&req, auth, sizeof auth), 0);
  cr_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                         "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

/* The S3 API reference, "Signature Calculations for the Authorization Header", Example:
 * GET Object (the first 10 bytes of examplebucket/test.txt). */
Test(sigv4, aws_s3_get_object_example)
{
  struct sigv4_header h[] = {
    { "host", "examplebucket.s3.amazonaws.com" },
    { "range", "bytes=0-9" },
    { "x-amz-content-sha256", EMPTY },
    { "x-amz-date", "20130524T000000Z" },
  };
  struct sigv4_request req = {
    .method = "GET", .canonical_uri = "/test.txt", .canonical_query = "", .headers = h,
    .n_headers = 4, .payload_sha256 = EMPTY, .region = "us-east-1", .service = "s3",
    .amz_date = "20130524T000000Z", .access_key_id = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  };
  char auth[SIGV4_AUTH_MAX];
  cr_assert_eq(sigv4_authorization(&req, auth, sizeof auth), 0);
  cr_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
                         "s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;"
                         "x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48"
                         "dd91039c6036bdb41");
  /* one changed input changes the signature: the test can fail */
  req.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEX";
  char other[SIGV4_AUTH_MAX];
  cr_assert_eq(sigv4_authorization(&req, other, sizeof other), 0);
  cr_assert_str_neq(auth, other);
}

/* IAM's "Deriving the signing key" example. */
Test(sigv4, aws_signing_key_example)
{
  unsigned char key[32];
  char hex[65];
  cr_assert_eq(sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                 "us-east-1", "iam", key), 0);
  for (int i = 0; i < 32; i++)
    sprintf(hex + 2 * i, "%02x", key[i]);
  cr_assert_str_eq(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

Test(sigv4, refuses_bad_input)
{
  struct sigv4_header h[] = { { "host", "h" } };
  struct sigv4_request req = {
    .method = "GET", .canonical_uri = "/", .canonical_query = "", .headers = h, .n_headers = 1,
    .payload_sha256 = EMPTY, .region = "r", .service = "s3", .amz_date = "20150830",
    .access_key_id = "A", .secret_key = "S",
  };
  char auth[SIGV4_AUTH_MAX];
  cr_assert_eq(sigv4_authorization(&req, auth, sizeof auth), -1);
  req.amz_date = "20150830T123600Z";
  cr_assert_eq(sigv4_authorization(&req, auth, 20), -1);
}

Test(s3, uri_encode)
{
  char out[128];
  cr_assert_eq(s3_uri_encode("a b/c+d~e_f.g-h", 15, out, sizeof out), 0);
  cr_assert_str_eq(out, "a%20b/c%2Bd~e_f.g-h");
  cr_assert_eq(s3_uri_encode("\xc3\xa9=", 3, out, sizeof out), 0);
  cr_assert_str_eq(out, "%C3%A9%3D");
  cr_assert_eq(s3_uri_encode("aaaa", 4, out, 4), -1);
}

Test(s3, region_as_cdi_extracts_it)
{
  char r[64];
  s3_region_of("s3.us-west-2.amazonaws.com", r, sizeof r);
  cr_assert_str_eq(r, "us-west-2");
  s3_region_of("bucket.s3.eu-central-1.amazonaws.com", r, sizeof r);
  cr_assert_str_eq(r, "eu-central-1");
  s3_region_of("127.0.0.1:9000", r, sizeof r);
  cr_assert_str_eq(r, "127");
  s3_region_of("minio:9000", r, sizeof r);
  cr_assert_str_eq(r, "minio:9000");
  s3_region_of("s3.amazonaws.com", r, sizeof r);
  cr_assert_str_eq(r, "s3");
}

Test(s3, endpoint_path_style)
{
  struct s3_endpoint ep;
  struct verr err = { 0 };
  cr_assert_eq(s3_parse_endpoint("https://user:pw@s3.us-east-2.amazonaws.com/bkt/dir/a%20b.img"
                                 "?x=1", &ep, &err), 0, "%s", err.message);
  cr_assert_str_eq(ep.scheme, "https");
  cr_assert_str_eq(ep.host, "s3.us-east-2.amazonaws.com");
  cr_assert_str_eq(ep.bucket, "bkt");
  cr_assert_str_eq(ep.key, "dir/a b.img");
  cr_assert_str_eq(ep.region, "us-east-2");
  cr_assert_eq(s3_parse_endpoint("http://127.0.0.1:9000//b/k/", &ep, &err), 0);
  cr_assert_str_eq(ep.bucket, "b");
  cr_assert_str_eq(ep.key, "k");
  cr_assert_str_eq(ep.region, "127");
  const char *bad[] = { "http://h/bucketonly", "http://h/", "ftp://h/b/k", "http:///b/k",
                        "http://h/b/%zz", "http://h/b/a%00" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(s3_parse_endpoint(bad[i], &ep, &err), -1, "%s", bad[i]);
    cr_assert_eq(err.code, VERR_USAGE);
    cr_assert(strstr(err.message, "BUCKET/KEY") != NULL, "%s", err.message);
  }
  /* the password of a URL never reaches the message */
  cr_assert_eq(s3_parse_endpoint("http://u:hunter2@h/onlybucket", &ep, &err), -1);
  cr_assert(strstr(err.message, "hunter2") == NULL, "%s", err.message);
}

Test(s3, error_body)
{
  static const char body[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
      "<Message>The request signature we calculated does not match &amp; &lt;so&gt;</Message>"
      "<StringToSign>AWS4-HMAC-SHA256...</StringToSign><RequestId>1</RequestId></Error>";
  struct s3_error e;
  cr_assert_eq(s3_parse_error(body, sizeof body - 1, &e), 0);
  cr_assert_str_eq(e.code, "SignatureDoesNotMatch");
  cr_assert_str_eq(e.message, "The request signature we calculated does not match & <so>");
  cr_assert_str_eq(e.endpoint, "");
  cr_assert_eq(s3_parse_error("<Error><Code>NoSuch", 19, &e), -1);
  cr_assert_eq(s3_parse_error("<html>busy</html>", 17, &e), -1);
  static const char redirect[] = "<Error><Code>PermanentRedirect</Code><Endpoint>b.s3.eu-west-1"
                                 ".amazonaws.com</Endpoint><Message>x\x01y</Message></Error>";
  cr_assert_eq(s3_parse_error(redirect, sizeof redirect - 1, &e), 0);
  cr_assert_str_eq(e.endpoint, "b.s3.eu-west-1.amazonaws.com");
  cr_assert_str_eq(e.message, "x?y");
  /* a field longer than its room is cut, never overflows */
  char big[2048] = "<Error><Code>";
  memset(big + 13, 'A', 1500);
  memcpy(big + 1513, "</Code></Error>", 15);
  cr_assert_eq(s3_parse_error(big, 1528, &e), 0);
  cr_assert_eq(strlen(e.code), sizeof e.code - 1);
}

Test(s3, object_checksum)
{
  char out[160];
  const char *from = NULL;
  /* sha256("hello") in base64 */
  cr_assert_eq(s3_object_checksum("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", "\"x\"", NULL, 0,
                                  out, sizeof out, &from), 0);
  cr_assert_str_eq(out, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  cr_assert_str_eq(from, "x-amz-checksum-sha256");
  cr_assert_eq(s3_object_checksum(NULL, "\"5D41402ABC4B2A76B9719D911017C592\"", "AES256", 0, out,
                                  sizeof out, &from), 0);
  cr_assert_str_eq(out, "md5:5d41402abc4b2a76b9719d911017c592");
  cr_assert_str_eq(from, "ETag");
  /* a multipart ETag, SSE-KMS, SSE-C and a composite checksum name no digest of the bytes */
  cr_assert_eq(s3_object_checksum(NULL, "\"5d41402abc4b2a76b9719d911017c592-2\"", NULL, 0, out,
                                  sizeof out, &from), -1);
  cr_assert_eq(s3_object_checksum(NULL, "\"5d41402abc4b2a76b9719d911017c592\"", "aws:kms", 0,
                                  out, sizeof out, &from), -1);
  cr_assert_eq(s3_object_checksum(NULL, "\"5d41402abc4b2a76b9719d911017c592\"", NULL, 1, out,
                                  sizeof out, &from), -1);
  cr_assert_eq(s3_object_checksum("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=-3", NULL, NULL, 0,
                                  out, sizeof out, &from), -1);
}
