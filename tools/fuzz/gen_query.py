#!/usr/bin/env python3
"""gen_query.py: random query strings through http in -> msg.req.query -> http response.

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_query.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
keys=["a","b","a[]","a[0]","a[1]","a[b]","a[b][c]","a[][b]","a.b","a[","a]","","c[d][]","x[5]","x[25]","%61","a%5Bb%5D","b[0][c]","d[a][b][c][d][e][f]","e[-1]","f[0x1]"]
vals=["1","","x","%20","a+b","%2B","%26","caf%C3%A9","%ZZ","1=2","[1]"]
cases=[]
for i in range(N):
    parts=[]
    for _ in range(random.randint(1,5)):
        k=random.choice(keys); r=random.random()
        if r<0.1: parts.append(k)
        elif r<0.15: parts.append("")
        else: parts.append(k+"="+random.choice(vals))
    q="&".join(parts)
    flow=[{"id":"in","type":"http in","name":"","url":"/q","method":"get","upload":False,"swaggerDoc":"","wires":[["c1"]]},
          {"id":"c1","type":"change","name":"","rules":[{"t":"set","p":"payload","pt":"msg","to":"req.query","tot":"msg"}],"action":"","property":"","from":"","to":"","reg":False,"wires":[["out"]]},
          {"id":"out","type":"http response","name":"","statusCode":"","headers":{},"wires":[]}]
    cases.append({"name":"query %d: %s"%(i,q),"flow":flow,"steps":[{"http":{"method":"GET","path":"/q?"+q}}]})
json.dump({"suite":"qs-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
