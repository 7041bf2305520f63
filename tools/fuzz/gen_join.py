#!/usr/bin/env python3
"""gen_join.py: random join configurations (manual and reduce modes) fed directly, with complete/reset/parts.

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_join.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
PAY=["a","bc","",1,2.5,True,None,[1,2],{"x":1},{"y":[2]},{"$buffer":"6162"},"x\ny"]
def join():
    mode=random.choice(["custom","custom","custom","reduce"])
    j={"id":"j1","type":"join","name":"","mode":mode,"build":random.choice(["string","array","object","merged","buffer"]),
       "property":random.choice(["payload","payload","topic","data",""]),"propertyType":random.choice(["msg","msg","full"]),"key":random.choice(["topic","key","payload"]),
       "joiner":random.choice(["\\n",",","","-"]),"joinerType":random.choice(["str","str","bin"]),"useparts":random.choice([False,True]),
       "accumulate":random.choice([False,True]),"timeout":"","count":random.choice(["","2","3","1"]),"reduceRight":random.choice([False,True]),
       "reduceExp":random.choice(["$A+payload","$A & payload","$append($A,[payload])","$A+1"]),"reduceInit":random.choice(["0","","[]"]),
       "reduceInitType":random.choice(["num","str","json"]),"reduceFixup":random.choice(["","$A/$N","$count($A)"]),"wires":[["h1"]]}
    if j["joinerType"]=="bin": j["joiner"]=random.choice(["[44]","[]","\"-\""])
    if j["reduceInitType"]=="json" and j["reduceInit"] not in ("[]",): j["reduceInit"]="[]"
    return j
cases=[]
for i in range(N):
    jn=join()
    steps=[]
    for k in range(random.randint(2,6)):
        m={"payload":random.choice(PAY),"topic":random.choice(["t","u","k1","k2"]),"n":k}
        r=random.random()
        if r<0.1: m["complete"]=True
        elif r<0.15: m["reset"]=True
        elif r<0.2: m["key"]=random.choice(["a","b"])
        if random.random()<0.2: m["data"]=random.choice(PAY)
        if random.random()<0.3: m["parts"]={"id":"P","index":k,"count":random.choice([2,3]),"type":random.choice(["array","string","object"]),"key":random.choice(["a","b"]),"ch":","}
        steps.append({"send":{"node":"j1","msg":m}}); steps.append({"wait":5})
    cases.append({"name":"join %d"%i,"flow":[jn,{"id":"h1","type":"helper","wires":[]}],"steps":steps})
json.dump({"suite":"join-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
