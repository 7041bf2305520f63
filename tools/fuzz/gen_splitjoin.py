#!/usr/bin/env python3
"""gen_splitjoin.py: random split configurations feeding random join configurations (or a helper).

Writes a FLOWTEST suite without expectations, for flowtest-record to fill in on
Node-RED (see README.md here):  gen_splitjoin.py SEED COUNT OUT.json
"""
import json, random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
PAY=["a\nb\nc","abc","",[1,2,3],[],[1],["x","y","z","w"],{"a":1,"b":2},{},{"$buffer":"610a620a63"},{"$buffer":""},"one,two,,three","x\n",5,True,None,{"k":[1,2]}]
def split():
    return {"id":"sp1","type":"split","name":"","splt":random.choice(["\\n",",","","b","10","2"]),"spltType":random.choice(["str","str","bin","len"]),
            "arraySplt":random.choice([1,2,3,"2",0]),"arraySpltType":"len","stream":random.choice([False,False,True]),
            "addname":random.choice(["","key","topic"]),"property":random.choice(["payload","payload","data"]),"wires":[["j1"]]}
def join():
    mode=random.choice(["auto","auto","custom"])
    j={"id":"j1","type":"join","name":"","mode":mode,"build":random.choice(["string","array","object","merged","buffer"]),
       "property":random.choice(["payload","payload","topic",""]),"propertyType":random.choice(["msg","msg","full"]),"key":random.choice(["topic","key"]),
       "joiner":random.choice(["\\n",",","","-"]),"joinerType":random.choice(["str","str","bin"]),"useparts":random.choice([False,True]),
       "accumulate":random.choice([False,True]),"timeout":"","count":random.choice(["","2","3"]),"reduceRight":False,"reduceExp":"","reduceInit":"",
       "reduceInitType":"","reduceFixup":"","wires":[["h1"]]}
    if j["joinerType"]=="bin": j["joiner"]=random.choice(["[44]","[]","\"-\""])
    return j
cases=[]
for i in range(N):
    sp=split(); jn=join()
    direct=random.random()<0.3
    if direct: sp["wires"]=[["h1"]]
    flow=[sp,jn,{"id":"h1","type":"helper","wires":[]}] if not direct else [sp,{"id":"h1","type":"helper","wires":[]}]
    steps=[]
    for k in range(random.randint(1,3)):
        m={"payload":random.choice(PAY),"topic":random.choice(["t","u"]),"n":k}
        if sp["property"]=="data": m["data"]=m["payload"]
        steps.append({"send":{"node":"sp1","msg":m}}); steps.append({"wait":5})
    cases.append({"name":"split join %d"%i,"flow":flow,"steps":steps})
json.dump({"suite":"splitjoin-fuzz","cases":cases},open(sys.argv[3],"w"),indent=1)
