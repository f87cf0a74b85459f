"""Stand-ins for the outside world notify sends to, as real local servers speaking the real
protocols: an SMTP relay (aiosmtpd), Alibaba Cloud's SMS API, the WeChat official-account API
and the chain's app's webhook receiver (one werkzeug HTTP server). For tests and the demo;
never imported by a service.

    python -m standins --http-port 8090 --smtp-port 2525 --state-dir .run/standins

Point the gateways at them: smtp host 127.0.0.1 port 2525; aliyun_sms endpoint
http://127.0.0.1:8090/aliyun/; wechat api http://127.0.0.1:8090/wechat; webhook url
http://127.0.0.1:8090/webhook; with the credentials given on the command line (see --help).

Each stand-in checks what the real service checks (the SMS signature and its nonce and time,
WeChat's access token and OpenID, the webhook's signature, SMTP AUTH) and answers its errors.
`POST /_control` {"target": "sms"|"wechat"|"webhook"|"smtp", "mode": "ok"|"down"|"refuse"|"slow"}
changes how one answers (down: HTTP 503, SMTP 421; refuse: its permanent error, or "code"'s;
slow: it waits --slow-seconds first, then answers, so a message a client gave up on may still
arrive, as with a real provider); {"target": "wechat", "expire_tokens": true} expires every
access token given so far. `GET /_control` shows the modes and how many tokens were given.
`GET /_sent` lists every message received, newest last; `GET /` shows them as a page. The
list is kept in sent.json under --state-dir too, with the SMTP certificate (smtp-cert.pem)."""
